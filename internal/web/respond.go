package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/nocsoc/nocsoc/internal/check"
	"github.com/nocsoc/nocsoc/internal/noc"
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
	var mbe *http.MaxBytesError
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
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: cleanMsg(err)})
	case errors.Is(err, store.ErrConflict), errors.Is(err, noc.ErrProvisioned):
		writeJSON(w, http.StatusConflict, errorBody{Error: cleanMsg(err)})
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
	}
}

// cleanMsg strips the sentinel suffix for client messages.
func cleanMsg(err error) string {
	m := err.Error()
	for _, suf := range []string{": " + store.ErrNotFound.Error(), ": " + store.ErrConflict.Error()} {
		m = strings.TrimSuffix(m, suf)
	}
	return m
}

// decodeJSON decodes a strict JSON body: unknown fields, trailing data,
// wrong types and oversize bodies are errors that name what is wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "request body must hold exactly one JSON value")
	}
	return nil
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
		return badRequest(te.Field, "field %q: expected %s, got JSON %s (byte offset %d)", te.Field, te.Type, te.Value, te.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(f, "unknown field %q", f)
	default:
		return badRequest("", "invalid JSON: %v", err)
	}
}
