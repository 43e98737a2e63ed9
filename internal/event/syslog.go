package event

// SyslogSeverityNames are the names of the syslog severities 0-7 (RFC 5424
// section 6.2.1), as log.syslog.severity.name holds them.
var SyslogSeverityNames = [8]string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"}

// SyslogFacilityNames are the names of the syslog facilities 0-23, as
// log.syslog.facility.name holds them.
var SyslogFacilityNames = [24]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
	"authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}
