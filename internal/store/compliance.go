package store

// complianceSchema is this file's migration (migrations.go); a placeholder until the
// tables are written.
const complianceSchema = `SELECT 1`
