package store

// jobsSchema is this file's migration (migrations.go); a placeholder until the
// tables are written.
const jobsSchema = `SELECT 1`
