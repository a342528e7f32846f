# Turns the numbered .sql files of one directory into a C++ source with a sorted table of
# migrations, so the binary carries its schema and applies it at start-up.
# Inputs: SQL_DIR, OUTPUT, SYMBOL.
file(GLOB sql_files "${SQL_DIR}/*.sql")
list(SORT sql_files)
set(body "")
foreach(f IN LISTS sql_files)
  get_filename_component(name "${f}" NAME)
  string(REGEX MATCH "^[0-9]+" number "${name}")
  if(number STREQUAL "")
    message(FATAL_ERROR "migration ${name} does not start with its number")
  endif()
  math(EXPR version "${number}")
  file(READ "${f}" sql)
  string(APPEND body "  {${version}, \"${name}\", R\"rdgsql(${sql})rdgsql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from ${SQL_DIR} by embed_migrations.cmake. Do not edit.\n#include \"storage/migrations.h\"\n\nnamespace rdg::storage {\n\nconst std::vector<Migration>& ${SYMBOL}() {\n  static const std::vector<Migration> kMigrations = {\n${body}  };\n  return kMigrations;\n}\n\n}  // namespace rdg::storage\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
