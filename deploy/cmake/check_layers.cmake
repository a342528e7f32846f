# The layer check: every `#include "…"` of a project header must name a header of the including
# target itself or of a target it may use — one it links, or one those export (PUBLIC, followed
# down). Anything else includes a layer above it or beside it, and fails. Links follow the
# declared order of layers (RDG_LAYER_ORDER, top-level CMakeLists.txt), and gateway/ and clients/
# never use each other. Every target a target links must also be included by one of its files
# (PUBLIC ones by one of its headers), so the graph drawn is the include graph. Project headers
# are named from the repository root ("gateway/…", "storage/…"), never relative to a folder.
#
#   cmake -DMANIFEST=<layers-manifest.cmake> -DSOURCE_DIR=<repository> [-DGRAPH_OUT=<file>]
#         -P check_layers.cmake
#
# The manifest (written by rdg_check_layers() in RdgTargets.cmake, or by tests/layers/) sets
# RDG_LAYER_ORDER (every target, lowest layer first: a target may link only targets before it),
# RDG_TARGETS and, per target, RDG_FILES_<t> (repository-relative files it owns), RDG_PUBLIC_<t>
# and RDG_PRIVATE_<t> (what it links; only declared targets and rdg_proto count). Includes of
# "rdg/v1/…" are rdg_proto's (the generated API and proto/rdg/v1/). Includes that are no file of
# the repository (Abseil, gRPC, …) are not checked here. GRAPH_OUT receives the layer graph:
# each target with its layer (0 = uses no other target), what it uses and passes on to its
# users (PUBLIC) and what it uses privately.

cmake_minimum_required(VERSION 3.25)
foreach(var MANIFEST SOURCE_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_layers.cmake: -D${var}=… is required")
  endif()
endforeach()
include("${MANIFEST}")

# Who owns which header.
foreach(t IN LISTS RDG_TARGETS)
  foreach(file IN LISTS RDG_FILES_${t})
    if(DEFINED "owner_${file}")
      message(FATAL_ERROR "layers: ${file} is claimed by both ${owner_${file}} and ${t}")
    endif()
    set("owner_${file}" "${t}")
  endforeach()
endforeach()

function(_is_target name out)
  if(name STREQUAL "rdg_proto" OR name IN_LIST RDG_TARGETS)
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()

# What a target exports to whoever links it: its PUBLIC targets and what they export.
function(_exported t out)
  set(result "")
  set(queue ${RDG_PUBLIC_${t}})
  while(queue)
    list(POP_FRONT queue d)
    _is_target("${d}" known)
    if(NOT known OR d IN_LIST result)
      continue()
    endif()
    list(APPEND result "${d}")
    list(APPEND queue ${RDG_PUBLIC_${d}})
  endwhile()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# What a target's own files may include: itself, what it links, what those export.
function(_visible t out)
  set(result "${t}")
  foreach(d IN LISTS RDG_PUBLIC_${t} RDG_PRIVATE_${t})
    _is_target("${d}" known)
    if(known)
      _exported("${d}" exported)
      list(APPEND result "${d}" ${exported})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES result)
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# The top folder of a target (its first file's): gateway/ and clients/ never use each other,
# storage/ and proto/ use neither.
function(_folder t out)
  list(GET RDG_FILES_${t} 0 first)
  string(REGEX REPLACE "/.*" "" top "${first}")
  set(${out} "${top}" PARENT_SCOPE)
endfunction()

set(violations "")

# The declared order (RDG_LAYER_ORDER, lowest first): a target uses only targets before it.
foreach(t IN LISTS RDG_TARGETS)
  list(FIND RDG_LAYER_ORDER "${t}" rank)
  if(rank LESS 0)
    string(APPEND violations "  ${t} is not in RDG_LAYER_ORDER (CMakeLists.txt): place it there\n")
    continue()
  endif()
  _folder(${t} folder)
  foreach(d IN LISTS RDG_PUBLIC_${t} RDG_PRIVATE_${t})
    _is_target("${d}" known)
    if(NOT known AND d MATCHES "^rdg[-_]" AND NOT d STREQUAL "rdg_warnings")
      string(APPEND violations "  ${t} links ${d}, which is not a declared target\n")
    endif()
    if(NOT known)
      continue()
    endif()
    if(folder STREQUAL "clients" AND d IN_LIST RDG_SERVER_ONLY)
      string(APPEND violations "  ${t} (clients/) links ${d}, which only the server may use\n")
    endif()
    list(FIND RDG_LAYER_ORDER "${d}" d_rank)
    if(d_rank GREATER_EQUAL rank)
      string(APPEND violations
        "  ${t} links ${d}, a layer above it (or beside it) in RDG_LAYER_ORDER\n")
    endif()
    _folder(${d} d_folder)
    if((folder STREQUAL "gateway" AND d_folder STREQUAL "clients") OR
       (folder STREQUAL "clients" AND d_folder STREQUAL "gateway") OR
       (folder MATCHES "^(storage|proto)$" AND d_folder MATCHES "^(gateway|clients)$"))
      string(APPEND violations "  ${t} (${folder}/) links ${d} of ${d_folder}/, which it may not\n")
    endif()
  endforeach()
endforeach()

foreach(t IN LISTS RDG_TARGETS)
  _visible(${t} visible)
  set(included "")
  set(included_by_headers "")
  foreach(file IN LISTS RDG_FILES_${t})
    if(NOT EXISTS "${SOURCE_DIR}/${file}")
      string(APPEND violations "  ${t} names ${file}, which does not exist\n")
      continue()
    endif()
    get_filename_component(dir "${file}" DIRECTORY)
    # Include directives the line-by-line reading below could misread are refused outright: one
    # named by a macro or continued on the next line, or hidden after a comment or in a digraph.
    file(STRINGS "${SOURCE_DIR}/${file}" odd
         REGEX "^[ \t]*(#|%:)[ \t]*include|^[ \t]*/\\*.*\\*/[ \t]*#[ \t]*include")
    foreach(line IN LISTS odd)
      if(NOT line MATCHES "^[ \t]*#[ \t]*include[ \t]*(\"[^\"]+\"|<[^>]+>)[ \t]*(//.*)?$")
        string(APPEND violations "  ${file} (${t}) has an include the check cannot read: "
                                 "write #include \"path\" on one line\n")
      endif()
    endforeach()
    file(STRINGS "${SOURCE_DIR}/${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]")
    foreach(line IN LISTS lines)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<]([^\">]+)[\">].*" "\\1" header
                           "${line}")
      # The project's headers are named from the repository root, never from the including
      # file's folder (the compiler would find those without the include trees).
      if(header MATCHES "(^|/)\\.\\.?/" OR IS_ABSOLUTE "${header}" OR
         (NOT dir STREQUAL "" AND EXISTS "${SOURCE_DIR}/${dir}/${header}"))
        string(APPEND violations "  ${file} (${t}) includes ${header} relative to its folder "
                                 "(or by an absolute path): "
                                 "name it from the repository root\n")
        continue()
      endif()
      if(header MATCHES "^rdg/v1/")
        set(owner rdg_proto)
      elseif(DEFINED "owner_${header}")
        set(owner "${owner_${header}}")
      elseif(EXISTS "${SOURCE_DIR}/${header}")
        string(APPEND violations "  ${file} (${t}) includes ${header}, which no target owns\n")
        continue()
      else()
        continue()  # a third-party header
      endif()
      if(NOT owner IN_LIST visible)
        string(APPEND violations
          "  ${file} (${t}) includes ${header} of ${owner}, which ${t} does not use\n")
      endif()
      list(APPEND included "${owner}")
      if(file MATCHES "\\.h$")
        list(APPEND included_by_headers "${owner}")
      endif()
    endforeach()
  endforeach()
  # And the other way round: every target it links is one it includes (the graph drawn is the
  # include graph, not a list of habits), and what it passes on (PUBLIC) its headers include.
  foreach(d IN LISTS RDG_PUBLIC_${t} RDG_PRIVATE_${t})
    _is_target("${d}" known)
    if(known AND NOT d IN_LIST included)
      string(APPEND violations "  ${t} links ${d} but none of its files includes a header of it\n")
    endif()
  endforeach()
  foreach(d IN LISTS RDG_PUBLIC_${t})
    _is_target("${d}" known)
    if(known AND d IN_LIST included AND NOT d IN_LIST included_by_headers)
      string(APPEND violations
        "  ${t} passes ${d} on (PUBLIC) but none of its headers includes one of ${d}'s: "
        "link it PRIVATE\n")
    endif()
  endforeach()
endforeach()

# Layers: 0 for a target that uses no other; else one above the highest it uses.
set(pending ${RDG_TARGETS})
set(level_rdg_proto 0)
set(rounds 0)
set(cycle FALSE)
while(pending)
  math(EXPR rounds "${rounds} + 1")
  if(rounds GREATER 100)
    string(APPEND violations "  a cycle among ${pending}\n")
    set(cycle TRUE)
    break()
  endif()
  set(next "")
  foreach(t IN LISTS pending)
    set(level 0)
    set(ready TRUE)
    foreach(d IN LISTS RDG_PUBLIC_${t} RDG_PRIVATE_${t})
      _is_target("${d}" known)
      if(NOT known)
        continue()
      elseif(NOT DEFINED level_${d})
        set(ready FALSE)
        break()
      endif()
      math(EXPR above "${level_${d}} + 1")
      if(above GREATER level)
        set(level ${above})
      endif()
    endforeach()
    if(ready)
      set(level_${t} ${level})
    else()
      list(APPEND next ${t})
    endif()
  endforeach()
  set(pending ${next})
endwhile()

if(DEFINED GRAPH_OUT AND NOT cycle)
  set(lines "")
  foreach(t IN LISTS RDG_TARGETS ITEMS rdg_proto)
    set(uses "")
    set(privately "")
    foreach(d IN LISTS RDG_PUBLIC_${t})
      _is_target("${d}" known)
      if(known)
        list(APPEND uses "${d}")
      endif()
    endforeach()
    foreach(d IN LISTS RDG_PRIVATE_${t})
      _is_target("${d}" known)
      if(known AND NOT d IN_LIST uses)
        list(APPEND privately "${d}")
      endif()
    endforeach()
    list(SORT uses)
    list(SORT privately)
    list(JOIN uses " " uses)
    list(JOIN privately " " privately)
    if(uses STREQUAL "")
      set(uses "-")
    endif()
    if(NOT privately STREQUAL "")
      string(APPEND uses " | private: ${privately}")
    endif()
    # Sortable: layer, then name.
    string(LENGTH "${level_${t}}" digits)
    set(key "${level_${t}}")
    if(digits EQUAL 1)
      set(key "0${key}")
    endif()
    list(APPEND lines "${key} ${t}: ${uses}")
  endforeach()
  list(REMOVE_DUPLICATES lines)
  list(SORT lines)
  set(graph "")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^0?([0-9]+) " "\\1  " line "${line}")
    string(APPEND graph "${line}\n")
  endforeach()
  file(WRITE "${GRAPH_OUT}" "${graph}")
endif()

if(NOT violations STREQUAL "")
  message(FATAL_ERROR "Layer violations (see gateway/README.md, \"Libraries and layers\"):\n"
                      "${violations}")
endif()
