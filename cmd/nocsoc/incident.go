package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// incidentCmd implements `nocsoc incident list|show|ack|resolve` for
// terminal users: thin calls to the server's API.
func incidentCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"incident: expected list, show ID, ack ID or resolve ID"}
	}
	fs := newFlags("incident " + args[0])
	server := fs.String("server", envOr("NOCSOC_SERVER", "http://127.0.0.1:8080"), "server URL (NOCSOC_SERVER)")
	token := fs.String("token", os.Getenv("NOCSOC_TOKEN"), "API token (NOCSOC_TOKEN)")
	status := fs.String("status", "", "list: filter by status")
	team := fs.String("team", "", "list: filter by team (noc or soc)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	// Flags may come before or after the incident ID.
	var positional []string
	rest := args[1:]
	for {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *token == "" {
		return usageError{"incident: an API token is needed: --token or NOCSOC_TOKEN (create one with 'nocsoc token create')"}
	}
	c := apiClient{base: strings.TrimSuffix(*server, "/"), token: *token}
	needID := func() (string, error) {
		if len(positional) != 1 {
			return "", usageError{fmt.Sprintf("incident %s: needs one incident ID", args[0])}
		}
		return positional[0], nil
	}
	switch args[0] {
	case "list":
		q := "?limit=100"
		if *status != "" {
			q += "&status=" + *status
		}
		if *team != "" {
			q += "&team=" + *team
		}
		var out struct {
			Incidents []map[string]any `json:"incidents"`
		}
		raw, err := c.do("GET", "/api/v1/incidents"+q, nil, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(raw)
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tTEAM\tTIER\tALERTS\tTRIGGERED\tTITLE")
		for _, inc := range out.Incidents {
			team := str(inc["team"])
			if b, _ := inc["joint"].(bool); b {
				team += "+joint"
			}
			fmt.Fprintf(tw, "%v\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", num(inc["id"]), str(inc["status"]), str(inc["severity"]), team,
				tierName(inc["tier"]), num(inc["alert_count"]), ago(str(inc["triggered_at"])), str(inc["title"]))
		}
		return tw.Flush()
	case "show":
		id, err := needID()
		if err != nil {
			return err
		}
		var out map[string]any
		raw, err := c.do("GET", "/api/v1/incidents/"+id, nil, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(raw)
			return err
		}
		inc := out
		if nested, ok := out["incident"].(map[string]any); ok {
			inc = nested
		}
		fmt.Fprintf(stdout, "#%v %s\n", num(inc["id"]), str(inc["title"]))
		fmt.Fprintf(stdout, "status %s · severity %s · team %s · tier %s · owner %s · %v alerts\n", str(inc["status"]), str(inc["severity"]),
			str(inc["team"]), tierName(inc["tier"]), orDash(str(inc["owner"])), num(inc["alert_count"]))
		if tl, ok := out["timeline"].([]any); ok {
			fmt.Fprintln(stdout, "\ntimeline:")
			for _, e := range tl {
				m, _ := e.(map[string]any)
				fmt.Fprintf(stdout, "  %s  %-18s %-10s %s\n", str(m["time"]), str(m["kind"]), str(m["actor"]), str(m["message"]))
			}
		}
		return nil
	case "ack", "acknowledge", "resolve":
		id, err := needID()
		if err != nil {
			return err
		}
		action := "acknowledge"
		if args[0] == "resolve" {
			action = "resolve"
		}
		var out map[string]any
		if _, err := c.do("POST", "/api/v1/incidents/"+id+"/"+action, []byte("{}"), &out); err != nil {
			return err
		}
		inc := out
		if nested, ok := out["incident"].(map[string]any); ok {
			inc = nested
		}
		fmt.Fprintf(stdout, "incident %s is %s\n", id, str(inc["status"]))
		return nil
	}
	return usageError{fmt.Sprintf("incident: unknown subcommand %q", args[0])}
}

type apiClient struct{ base, token string }

func (c apiClient) do(method, path string, body []byte, out any) ([]byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	cl := &http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s %s: %s (%d)", method, path, e.Error, resp.StatusCode)
		}
		return nil, fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode reply: %w", method, path, err)
		}
	}
	return raw, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func str(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func num(v any) string {
	if f, ok := v.(float64); ok {
		return fmt.Sprintf("%d", int64(f))
	}
	return str(v)
}

func tierName(v any) string {
	f, ok := v.(float64)
	if !ok || f < 0 {
		return "-"
	}
	return fmt.Sprintf("L%d", int(f)+1)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ago(ts string) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ts
	}
	d := time.Since(t).Round(time.Second)
	return d.String() + " ago"
}
