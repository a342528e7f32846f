# How RDG's libraries and programs are declared, so that the build holds the layers.
#
#   rdg_library(<name> [INTERFACE] [SOURCES …] [HEADERS …] [PUBLIC …] [PRIVATE …])
#   rdg_executable(<name> [SOURCES …] [HEADERS …] [PRIVATE …])
#
# SOURCES and HEADERS are paths relative to the current CMakeLists.txt (HEADERS may be globs):
# the files the target owns. PUBLIC and PRIVATE are what it links, as target_link_libraries.
#
# A target's headers are reachable only through its own include tree,
# <build>/include/<name>/<path in the repository> (symbolic links to the sources), exported to
# what links it. So `#include "gateway/api/…"` from a library that does not link rdg_api does not
# compile: there is no repository-wide include root. (An include relative to the file's folder
# would still compile; the check below refuses those.) At the end of the configure step,
# rdg_check_layers() runs deploy/cmake/check_layers.cmake over every target declared here against
# RDG_LAYER_ORDER; it names the offending file and include, and writes the layer graph
# (<build>/layers.txt) that gateway/README.md shows (tests/layers/ checks that they agree).

set(RDG_INCLUDE_TREES "${CMAKE_BINARY_DIR}/include")
set(RDG_LAYER_MANIFEST "${CMAKE_BINARY_DIR}/layers-manifest.cmake")
set_property(GLOBAL PROPERTY RDG_TARGETS "")

# `path` relative to the repository, or "" when it is no source of the repository: outside it,
# or in the build tree (generated files; the build folder may sit inside the checkout).
function(_rdg_repository_file path out)
  set(${out} "" PARENT_SCOPE)
  string(FIND "${path}/" "${CMAKE_BINARY_DIR}/" in_build)
  if(in_build EQUAL 0)
    return()
  endif()
  file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${path}")
  if(NOT rel MATCHES "^\\.\\./")
    set(${out} "${rel}" PARENT_SCOPE)
  endif()
endfunction()

# Files (repository-relative) named by SOURCES/HEADERS; globs expanded.
function(_rdg_owned_files out)
  set(files "")
  foreach(pattern IN LISTS ARGN)
    if(pattern MATCHES "[*?]")
      file(GLOB matched RELATIVE "${PROJECT_SOURCE_DIR}" CONFIGURE_DEPENDS
           "${CMAKE_CURRENT_SOURCE_DIR}/${pattern}")
      list(APPEND files ${matched})
    elseif(IS_ABSOLUTE "${pattern}")
      _rdg_repository_file("${pattern}" rel)
      if(NOT rel STREQUAL "")  # a file of the repository named by its full path
        list(APPEND files "${rel}")
      endif()  # else generated in the build tree: nobody's header, not scanned
    else()
      file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${CMAKE_CURRENT_SOURCE_DIR}/${pattern}")
      list(APPEND files "${rel}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES files)
  set(${out} "${files}" PARENT_SCOPE)
endfunction()

# The include tree of `name`: one symbolic link per owned header, at its repository path.
function(_rdg_include_tree name out)
  set(root "${RDG_INCLUDE_TREES}/${name}")
  file(REMOVE_RECURSE "${root}")
  foreach(file IN LISTS ARGN)
    if(file MATCHES "\\.h$")
      get_filename_component(dir "${root}/${file}" DIRECTORY)
      file(MAKE_DIRECTORY "${dir}")
      file(CREATE_LINK "${PROJECT_SOURCE_DIR}/${file}" "${root}/${file}" SYMBOLIC)
    endif()
  endforeach()
  file(MAKE_DIRECTORY "${root}")
  set(${out} "${root}" PARENT_SCOPE)
endfunction()

function(_rdg_register name files public private)
  set_property(GLOBAL APPEND PROPERTY RDG_TARGETS ${name})
  set_property(GLOBAL PROPERTY "RDG_FILES_${name}" "${files}")
  set_property(GLOBAL PROPERTY "RDG_PUBLIC_${name}" "${public}")
  set_property(GLOBAL PROPERTY "RDG_PRIVATE_${name}" "${private}")
endfunction()

function(rdg_library name)
  cmake_parse_arguments(PARSE_ARGV 1 A "INTERFACE" "" "SOURCES;HEADERS;PUBLIC;PRIVATE")
  _rdg_owned_files(files ${A_SOURCES} ${A_HEADERS})
  _rdg_include_tree(${name} tree ${files})
  if(A_INTERFACE)
    if(A_SOURCES OR A_PRIVATE)
      message(FATAL_ERROR "rdg_library(${name} INTERFACE): headers and PUBLIC links only")
    endif()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE "${tree}")
    target_link_libraries(${name} INTERFACE ${A_PUBLIC})
  else()
    add_library(${name} STATIC ${A_SOURCES})
    target_include_directories(${name} PUBLIC "${tree}")
    target_link_libraries(${name} PUBLIC ${A_PUBLIC} PRIVATE ${A_PRIVATE} rdg_warnings)
  endif()
  _rdg_register(${name} "${files}" "${A_PUBLIC}" "${A_PRIVATE}")
endfunction()

function(rdg_executable name)
  cmake_parse_arguments(PARSE_ARGV 1 A "" "" "SOURCES;HEADERS;PRIVATE")
  _rdg_owned_files(files ${A_SOURCES} ${A_HEADERS})
  _rdg_include_tree(${name} tree ${files})
  add_executable(${name} ${A_SOURCES})
  target_include_directories(${name} PRIVATE "${tree}")
  target_link_libraries(${name} PRIVATE ${A_PRIVATE} rdg_warnings)
  _rdg_register(${name} "${files}" "" "${A_PRIVATE}")
endfunction()

# The targets a link property names: aliases resolved, $<LINK_ONLY:…>/$<BUILD_INTERFACE:…>
# unwrapped. `only_plain`: leave out what $<LINK_ONLY:…> wraps (a static library's private links
# in its INTERFACE_LINK_LIBRARIES).
function(_rdg_links target property only_plain out)
  get_target_property(items ${target} ${property})
  set(names "")
  if(items)
    foreach(item IN LISTS items)
      if(only_plain AND item MATCHES "^\\$<LINK_ONLY:")
        continue()
      endif()
      string(REGEX REPLACE "^\\$<[A-Z_]+:(.*)>$" "\\1" item "${item}")
      if(TARGET "${item}")
        get_target_property(aliased "${item}" ALIASED_TARGET)
        if(aliased)
          set(item "${aliased}")
        endif()
      endif()
      list(APPEND names "${item}")
    endforeach()
  endif()
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

# Writes the manifest of every declared target — its files (registered headers and the target's
# SOURCES as they stand now, target_sources() included) and its links as CMake will use them
# (later target_link_libraries() calls included) — and runs the layer check on it (configure
# fails with the check's message on a violation).
function(rdg_check_layers)
  get_property(targets GLOBAL PROPERTY RDG_TARGETS)
  set(text "# Generated by rdg_check_layers() (deploy/cmake/RdgTargets.cmake).\n")
  string(APPEND text "set(RDG_TARGETS \"${targets}\")\n")
  string(APPEND text "set(RDG_LAYER_ORDER \"${RDG_LAYER_ORDER}\")\n")
  string(APPEND text "set(RDG_SERVER_ONLY \"${RDG_SERVER_ONLY}\")\n")
  foreach(t IN LISTS targets)
    get_property(files GLOBAL PROPERTY "RDG_FILES_${t}")
    get_property(public GLOBAL PROPERTY "RDG_PUBLIC_${t}")
    get_property(private GLOBAL PROPERTY "RDG_PRIVATE_${t}")
    if(TARGET ${t} AND NOT t STREQUAL "rdg_proto")
      get_target_property(type ${t} TYPE)
      if(NOT type STREQUAL "INTERFACE_LIBRARY")
        get_target_property(dir ${t} SOURCE_DIR)
        get_target_property(sources ${t} SOURCES)
        foreach(source IN LISTS sources)
          if(NOT IS_ABSOLUTE "${source}")
            set(source "${dir}/${source}")
          endif()
          _rdg_repository_file("${source}" rel)
          if(NOT rel STREQUAL "")
            list(APPEND files "${rel}")
          endif()
        endforeach()
        list(REMOVE_DUPLICATES files)
      endif()
      if(type STREQUAL "INTERFACE_LIBRARY")
        _rdg_links(${t} INTERFACE_LINK_LIBRARIES FALSE public)
        set(private "")
      elseif(type STREQUAL "EXECUTABLE")
        set(public "")
        _rdg_links(${t} LINK_LIBRARIES FALSE private)
      else()
        _rdg_links(${t} INTERFACE_LINK_LIBRARIES TRUE public)
        _rdg_links(${t} LINK_LIBRARIES FALSE all)
        set(private "")
        foreach(d IN LISTS all)
          if(NOT d IN_LIST public)
            list(APPEND private "${d}")
          endif()
        endforeach()
      endif()
    endif()
    string(APPEND text "set(RDG_FILES_${t} \"${files}\")\n")
    string(APPEND text "set(RDG_PUBLIC_${t} \"${public}\")\n")
    string(APPEND text "set(RDG_PRIVATE_${t} \"${private}\")\n")
  endforeach()
  file(WRITE "${RDG_LAYER_MANIFEST}" "${text}")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -DMANIFEST=${RDG_LAYER_MANIFEST} -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
            -DGRAPH_OUT=${CMAKE_BINARY_DIR}/layers.txt
            -P "${PROJECT_SOURCE_DIR}/deploy/cmake/check_layers.cmake"
    RESULT_VARIABLE failed ERROR_VARIABLE message)
  if(failed)
    message(FATAL_ERROR "${message}")
  endif()
endfunction()
