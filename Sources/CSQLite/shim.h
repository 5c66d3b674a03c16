#ifndef GEMELLO_CSQLITE_SHIM_H
#define GEMELLO_CSQLITE_SHIM_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import. */
static inline sqlite3_destructor_type gemello_sqlite_transient(void) { return SQLITE_TRANSIENT; }

/* sqlite3_bind_text64 etc. take the destructor; wrap the common calls so Swift never sees the cast. */
static inline int gemello_sqlite_bind_text(sqlite3_stmt *stmt, int index, const char *text, int length) {
    return sqlite3_bind_text(stmt, index, text, length, SQLITE_TRANSIENT);
}
static inline int gemello_sqlite_bind_blob(sqlite3_stmt *stmt, int index, const void *data, int length) {
    return sqlite3_bind_blob(stmt, index, data, length, SQLITE_TRANSIENT);
}
#endif
