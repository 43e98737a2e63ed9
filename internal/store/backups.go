package store

// backupsSchema is this file's migration (migrations.go); a placeholder until the
// tables are written.
const backupsSchema = `SELECT 1`
