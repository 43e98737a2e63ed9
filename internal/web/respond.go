package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/noc"
	"github.com/nocsoc/nocsoc/internal/response"
	"github.com/nocsoc/nocsoc/internal/store"
)

// maxBody bounds every request body.
const maxBody = 1 << 20

// HTTPError is an error with a status and a client-safe message; Err is
// the logged detail.
type HTTPError struct {
	Status int
	Msg    string
	Field  string
	Err    error
}

func (e *HTTPError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *HTTPError) Unwrap() error { return e.Err }

func badRequest(field, format string, args ...any) *HTTPError {
	return &HTTPError{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...), Field: field}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// writeError maps err to a status and a JSON body. Known domain errors get
// their own status; anything else is a 500 whose detail is only logged.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *HTTPError
	var fe *check.FieldError
	var sfe *store.FieldError
	var mbe *http.MaxBytesError
	var te *incident.ErrTransition
	switch {
	case errors.As(err, &he):
		if he.Status >= 500 {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeJSON(w, he.Status, errorBody{Error: he.Msg, Field: he.Field})
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)})
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fe.Error(), Field: fe.Field})
	case errors.As(err, &sfe):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: sfe.Field + ": " + sfe.Reason, Field: sfe.Field})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: cleanMsg(err)})
	case errors.As(err, &te):
		// A workflow violation: the request is fine, the incident's state
		// does not allow it.
		writeJSON(w, http.StatusConflict, errorBody{Error: te.Error()})
	case errors.Is(err, response.ErrNotOpen):
		writeJSON(w, http.StatusConflict, errorBody{Error: err.Error()})
	case errors.Is(err, store.ErrConflict), errors.Is(err, noc.ErrProvisioned), errors.Is(err, noc.ErrDisabled):
		writeJSON(w, http.StatusConflict, errorBody{Error: cleanMsg(err)})
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
	}
}

// cleanMsg turns "check \"x\": not found" into "check \"x\" not found" for
// client messages.
func cleanMsg(err error) string {
	m := err.Error()
	if strings.HasSuffix(m, ": "+store.ErrNotFound.Error()) {
		return strings.TrimSuffix(m, ": "+store.ErrNotFound.Error()) + " not found"
	}
	return strings.TrimSuffix(m, ": "+store.ErrConflict.Error())
}

// decodeJSON decodes a strict JSON body: unknown fields, trailing data,
// wrong types and oversize bodies are errors that name what is wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return err
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] != '{' {
		return badRequest("", "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return locate(jsonError(err), body)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "request body must hold exactly one JSON value")
	}
	return nil
}

// locate fills in the field path of errors that encoding/json reports
// without one: unknown keys inside nested objects and values rejected by a
// type's own UnmarshalJSON (durations, times). It finds the offending key
// or value in the decoded tree.
func locate(err error, body []byte) error {
	var he *HTTPError
	if !errors.As(err, &he) {
		return err
	}
	var tree any
	if json.Unmarshal(body, &tree) != nil {
		return err
	}
	if strings.HasPrefix(he.Msg, "unknown field ") && he.Field != "" {
		if p := findKey(tree, he.Field, ""); p != "" {
			he.Field = p
			he.Msg = fmt.Sprintf("unknown field %q", p)
		}
		return he
	}
	if he.Field == "" {
		// Messages like: invalid duration "fast" / parsing time "tomorrow" ...
		if i := strings.IndexByte(he.Msg, '"'); i >= 0 {
			if j := strings.IndexByte(he.Msg[i+1:], '"'); j >= 0 {
				val := he.Msg[i+1 : i+1+j]
				if p := findValue(tree, val, ""); p != "" {
					he.Field = p
					he.Msg = fmt.Sprintf("%s: invalid value %q", p, val)
					if strings.Contains(err.Error(), "duration") {
						he.Msg += " (expected a duration like \"30s\" or \"5m\")"
					} else if strings.Contains(err.Error(), "time") {
						he.Msg += " (expected an RFC 3339 time like \"2026-01-02T15:04:05Z\")"
					}
				}
			}
		}
	}
	return he
}

func findKey(v any, key, prefix string) string {
	switch t := v.(type) {
	case map[string]any:
		if _, ok := t[key]; ok {
			return joinPath(prefix, key)
		}
		for k, c := range t {
			if r := findKey(c, key, joinPath(prefix, k)); r != "" {
				return r
			}
		}
	case []any:
		for i, c := range t {
			if r := findKey(c, key, fmt.Sprintf("%s[%d]", prefix, i)); r != "" {
				return r
			}
		}
	}
	return ""
}

func joinPath(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func findValue(v any, val, prefix string) string {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if r := findValue(c, val, p); r != "" {
				return r
			}
		}
	case []any:
		for i, c := range t {
			if r := findValue(c, val, fmt.Sprintf("%s[%d]", prefix, i)); r != "" {
				return r
			}
		}
	case string:
		if t == val {
			return prefix
		}
	}
	return ""
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("", "request body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "malformed JSON: unexpected end of body")
	case errors.As(err, &se):
		return badRequest("", "malformed JSON at byte offset %d: %v", se.Offset, se)
	case errors.As(err, &te):
		return badRequest(te.Field, "field %q: expected %s, got JSON %s (byte offset %d)", te.Field, jsonKind(te.Type.Kind().String()), te.Value, te.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(f, "unknown field %q", f)
	default:
		return badRequest("", "invalid JSON: %v", err)
	}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "true or false"
	case k == "slice", k == "array":
		return "an array"
	case k == "map", k == "struct", k == "ptr":
		return "an object"
	}
	return k
}
