# keyward: installs the systemd user units, run by CMake's install step
# (the `# --- install ---` section of CMakeLists.txt includes it there).
#
# The service's ExecStart must name the installed program, and the prefix is
# only known now: `cmake --install --prefix P` (and `make install PREFIX=P`)
# choose it after configuring. So @BINDIR@ is filled in here, into a staging
# copy, and file(INSTALL) puts that copy under $DESTDIR and records it in
# install_manifest.txt for `make uninstall`.
#
# Set by the caller: KEYWARD_UNIT_SOURCE_DIR (contrib/systemd),
# KEYWARD_UNIT_STAGING_DIR (in the build tree), KEYWARD_INSTALL_BINDIR and
# KEYWARD_INSTALL_UNITDIR (each relative to the prefix, or absolute).

foreach(var KEYWARD_UNIT_SOURCE_DIR KEYWARD_UNIT_STAGING_DIR KEYWARD_INSTALL_BINDIR
            KEYWARD_INSTALL_UNITDIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "keyward-install-units.cmake: ${var} is not set")
  endif()
endforeach()

set(BINDIR "${KEYWARD_INSTALL_BINDIR}")
if(NOT IS_ABSOLUTE "${BINDIR}")
  set(BINDIR "${CMAKE_INSTALL_PREFIX}/${BINDIR}")
endif()
set(unitdir "${KEYWARD_INSTALL_UNITDIR}")
if(NOT IS_ABSOLUTE "${unitdir}")
  set(unitdir "${CMAKE_INSTALL_PREFIX}/${unitdir}")
endif()

# One staging directory per destination, so that two installs to different
# places at once never write each other's files.
string(MD5 tag "$ENV{DESTDIR}|${BINDIR}")
set(staging "${KEYWARD_UNIT_STAGING_DIR}/${tag}")
set(units)
foreach(unit keyward-agent.socket keyward-agent.service)
  configure_file("${KEYWARD_UNIT_SOURCE_DIR}/${unit}" "${staging}/${unit}" @ONLY)
  list(APPEND units "${staging}/${unit}")
endforeach()
file(INSTALL DESTINATION "${unitdir}" TYPE FILE FILES ${units})
