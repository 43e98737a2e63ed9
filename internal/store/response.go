package store

// responseSchema is this file's migration (migrations.go); a placeholder until the
// tables are written.
const responseSchema = `SELECT 1`
