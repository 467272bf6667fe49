# Run by "cmake --install" (install(SCRIPT) from client/CMakeLists.txt):
# writes physmem.pc for the prefix being installed to, which may differ from
# the configured one (cmake --install --prefix DIR). Set before this runs:
# PHYSMEM_PC_IN, PHYSMEM_PC_OUT, PHYSMEM_PC_LIBDIR, PHYSMEM_PC_INCLUDEDIR
# (each relative to the prefix or absolute), PROJECT_VERSION.
set(PHYSMEM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(_dir PHYSMEM_PC_LIBDIR PHYSMEM_PC_INCLUDEDIR)
  if(NOT IS_ABSOLUTE "${${_dir}}")
    set(${_dir} "\${prefix}/${${_dir}}")
  endif()
endforeach()
configure_file("${PHYSMEM_PC_IN}" "${PHYSMEM_PC_OUT}" @ONLY)
