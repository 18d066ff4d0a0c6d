# Run by `cmake --install` (make install): the systemd unit, with its
# ExecStart pointing at the binary under the prefix actually installed to.
set(unit_dir "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
file(READ "${CMAKE_CURRENT_LIST_DIR}/tsunagi.service" unit)
string(REPLACE "/usr/local/" "${CMAKE_INSTALL_PREFIX}/" unit "${unit}")
message(STATUS "Installing: ${unit_dir}/tsunagi.service")
file(MAKE_DIRECTORY "${unit_dir}")
file(WRITE "${unit_dir}/tsunagi.service" "${unit}")
