# CMake toolchain file: cross-compile for 64-bit Windows (x86_64-w64-mingw32)
# with Debian's mingw-w64 packages (gcc-mingw-w64-x86-64, binutils-mingw-w64-x86-64).
#
# Usage:
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
#         -DKEYWARD_WIN_DEPS=/var/cache/keyward/win-deps/openssl-..._libuv-... ...
# KEYWARD_WIN_DEPS may also come from the environment. It is the prefix that
# scripts/win-deps.sh prints; it holds the static OpenSSL and libuv builds.

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

# Thread flavour: win32, named explicitly rather than through the
# x86_64-w64-mingw32-gcc alternative (which a machine may have switched).
# Neither dependency needs the posix flavour: OpenSSL uses Win32 threads on
# mingw (crypto/threads_win.c) and libuv uses Win32 threads and IOCP. The win32
# flavour also avoids pulling libwinpthread into every -static .exe.
# scripts/win-deps.sh builds OpenSSL with the same compiler.
set(KEYWARD_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${KEYWARD_MINGW_PREFIX}-gcc-win32)
set(CMAKE_RC_COMPILER ${KEYWARD_MINGW_PREFIX}-windres)
# CMake guesses binutils from the compiler's name, and the "-win32" suffix
# defeats that guess; name them so it never falls back to the host's ar.
set(CMAKE_AR ${KEYWARD_MINGW_PREFIX}-ar CACHE FILEPATH "mingw-w64 ar")
set(CMAKE_RANLIB ${KEYWARD_MINGW_PREFIX}-ranlib CACHE FILEPATH "mingw-w64 ranlib")
# No C++ compiler is set: keyward and libuv are C only, and Debian's
# gcc-mingw-w64-x86-64 does not install g++.

# Where the cross-built dependencies are: a -D cache variable wins over the
# environment. Without it the find_* calls below would fall back to the host's
# /usr/include and /usr/lib (Linux OpenSSL headers, say), so stop early.
if(NOT KEYWARD_WIN_DEPS AND DEFINED ENV{KEYWARD_WIN_DEPS})
  set(KEYWARD_WIN_DEPS "$ENV{KEYWARD_WIN_DEPS}")
endif()
if(NOT KEYWARD_WIN_DEPS)
  message(FATAL_ERROR
    "KEYWARD_WIN_DEPS is not set. Run scripts/win-deps.sh and pass its output "
    "as -DKEYWARD_WIN_DEPS=... or in the KEYWARD_WIN_DEPS environment variable.")
endif()
set(KEYWARD_WIN_DEPS "${KEYWARD_WIN_DEPS}" CACHE PATH
  "Prefix with the static Windows builds of OpenSSL and libuv (scripts/win-deps.sh)")
# try_compile() re-reads this file in a fresh project that does not see our
# cache; this list makes CMake hand the variable over.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES KEYWARD_WIN_DEPS)

# Search for libraries, headers and packages only under the dependency prefix;
# programs (perl, pkg-config, ...) are host tools and are found on the host.
set(CMAKE_FIND_ROOT_PATH "${KEYWARD_WIN_DEPS}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (FindPkgConfig) ignores the settings above; point it at the
# prefix only, so it cannot report the host's Linux libraries.
set(ENV{PKG_CONFIG_LIBDIR} "${KEYWARD_WIN_DEPS}/lib/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
