package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// auditCmd runs 'nocsoc audit verify --data DIR': it recomputes the audit
// log's hash chain and prints whether it is intact or where it breaks. A
// broken chain exits 1, so a cron job or CI step can alert on it.
func auditCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError{"audit: expected 'audit verify --data DIR'"}
	}
	fs := newFlags("audit verify")
	data := fs.String("data", "./nocsoc-data", "data directory")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Sprintf("audit verify: unexpected argument %q", fs.Arg(0))}
	}
	st, err := openStore(*data)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.VerifyAudit(context.Background())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.String())
	if !res.Intact() {
		return errors.New("audit verify: the audit log has been tampered with or damaged")
	}
	return nil
}
