# Install rules, included from CMakeLists.txt when BL_INSTALL is on (the
# default when Beamline is the top-level project):
#   include/beamline.h, include/beamline/*.h
#   lib/libbeamline.a, lib/libbeamline.so -> .so.<soversion> -> .so.<version>
#   lib/pkgconfig/beamline.pc
#   lib/cmake/Beamline/ (find_package(Beamline): Beamline::beamline and
#                        Beamline::beamline_static)
#   share/doc/beamline/LICENSE
#   bin/beamline-top (with BL_BUILD_TOOLS)
# ("lib" is CMAKE_INSTALL_LIBDIR: lib/<multiarch> on Debian under /usr.)
include(CMakePackageConfigHelpers)

install(TARGETS beamline beamline_shared EXPORT BeamlineTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/beamline.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/beamline DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
if(TARGET beamline-top)
  install(TARGETS beamline-top RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# The CMake package.  SameMajorVersion matches the shared library's SONAME,
# which changes with the major version only.
set(BL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Beamline)
install(EXPORT BeamlineTargets NAMESPACE Beamline:: DESTINATION ${BL_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/BeamlineConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/BeamlineConfig.cmake
                              INSTALL_DESTINATION ${BL_CMAKE_DIR})
# 0.x: a minor version may break what the one before offered.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(BL_COMPAT SameMinorVersion)
else()
  set(BL_COMPAT SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/BeamlineConfigVersion.cmake
                                 COMPATIBILITY ${BL_COMPAT})
install(FILES ${PROJECT_BINARY_DIR}/BeamlineConfig.cmake
              ${PROJECT_BINARY_DIR}/BeamlineConfigVersion.cmake
        DESTINATION ${BL_CMAKE_DIR})

# beamline.pc.  Its prefix is found from the file's own place (${pcfiledir}),
# so it stays right whatever prefix `cmake --install --prefix` is given;
# absolute install directories make it fall back to absolute paths.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(BL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(BL_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(BL_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH BL_PC_UP /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
  string(REGEX REPLACE "/$" "" BL_PC_UP "${BL_PC_UP}")
  set(BL_PC_PREFIX "\${pcfiledir}/${BL_PC_UP}")
  set(BL_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(BL_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/beamline.pc.in ${PROJECT_BINARY_DIR}/beamline.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/beamline.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
