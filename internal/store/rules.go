package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Detection rules come from files; the store keeps only which of them an
// operator switched off, so the choice survives restarts and reloads.

// DisabledRules returns the ids of the detection rules switched off.
func (s *Store) DisabledRules(ctx context.Context) (map[string]bool, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT rule_id FROM disabled_rules`)
	if err != nil {
		return nil, fmt.Errorf("disabled rules: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("disabled rules: %w", err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("disabled rules: %w", err)
	}
	return out, nil
}

// SetRuleDisabled switches a detection rule off (disabled) or on again,
// audited as rule.disable / rule.enable. Setting the state it already has
// changes nothing and writes no audit entry.
func (s *Store) SetRuleDisabled(ctx context.Context, actor Actor, ruleID string, disabled bool) error {
	if strings.TrimSpace(ruleID) == "" || len(ruleID) > 256 {
		return fmt.Errorf("set rule state: %w", invalid("rule_id", "is required (at most 256 characters)"))
	}
	return s.write(ctx, "rule.state", func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		action := "rule.enable"
		if disabled {
			action = "rule.disable"
			res, err = tx.ExecContext(ctx, `INSERT INTO disabled_rules (rule_id, disabled_by, disabled_at)
				VALUES (?, ?, ?) ON CONFLICT (rule_id) DO NOTHING`, ruleID, actor.Name, ms(s.now()))
		} else {
			res, err = tx.ExecContext(ctx, `DELETE FROM disabled_rules WHERE rule_id = ?`, ruleID)
		}
		if err != nil {
			return fmt.Errorf("set rule state: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return s.audit(ctx, tx, actor, action, "rule:"+ruleID, map[string]bool{"disabled": !disabled}, map[string]bool{"disabled": disabled})
	})
}
