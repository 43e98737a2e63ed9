package store

// thresholdsSchema is this file's migration (migrations.go); a placeholder until the
// tables are written.
const thresholdsSchema = `SELECT 1`
