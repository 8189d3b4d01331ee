# cnnc_add_network(<target> <file.net> [BATCH n]): compile a .net file with cnnc at build time
# and build <target>, a trainer with the same command line as `cnnc run <file.net>`.
# Also usable from another project after add_subdirectory(<path to cnnc>).
function(cnnc_add_network target net)
  cmake_parse_arguments(ARG "" "BATCH" "" ${ARGN})
  get_filename_component(net_path "${net}" ABSOLUTE)
  set(c_file "${CMAKE_CURRENT_BINARY_DIR}/${target}.c")
  set(h_file "${CMAKE_CURRENT_BINARY_DIR}/${target}.h")
  set(batch_args "")
  if(ARG_BATCH)
    set(batch_args --batch ${ARG_BATCH})
  endif()
  add_custom_command(
    OUTPUT "${c_file}" "${h_file}"
    COMMAND cnnc "${net_path}" -o "${c_file}" -H "${h_file}" ${batch_args}
    DEPENDS cnnc "${net_path}"
    COMMENT "cnnc ${net}"
    VERBATIM)
  add_executable(${target} "${c_file}")
  target_link_libraries(${target} PRIVATE cnnrt)
  target_include_directories(${target} PUBLIC "${CMAKE_CURRENT_BINARY_DIR}")
  # cnnc's output must compile warning-free, pedantic included.
  target_compile_options(${target} PRIVATE -Wall -Wextra -pedantic -Werror)
endfunction()
