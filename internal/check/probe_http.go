package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// defaultMaxRedirects is how many redirects an http check follows by default.
const defaultMaxRedirects = 10

// newTransport builds one of the two shared HTTP transports. Keep-alives are
// off so every probe opens a fresh connection: a pooled connection would hide
// a service that no longer accepts new ones. There is no proxy: a probe
// measures the direct path to the target.
func (p *Prober) newTransport(verify bool) *http.Transport {
	return &http.Transport{
		DialContext:            func(ctx context.Context, _, addr string) (net.Conn, error) { return p.dial(ctx, addr) },
		TLSClientConfig:        p.tlsConfig("", verify),
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		ResponseHeaderTimeout:  0, // the probe's context bounds everything
	}
}

// errTooManyRedirects marks a redirect chain longer than the check allows.
var errTooManyRedirects = errors.New("too many redirects")

func (p *Prober) probeHTTP(ctx context.Context, s Spec, res *Result) error {
	h := s.HTTP
	if h == nil {
		h = &HTTPSpec{}
	}
	method := h.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if h.Body != "" {
		body = strings.NewReader(h.Body)
	}
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(method), s.Target, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range h.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}

	client := &http.Client{Transport: p.verifying}
	if !boolOr(h.TLSVerify, true) {
		client.Transport = p.insecure
	}
	maxRedirects := h.MaxRedirects
	if maxRedirects <= 0 {
		maxRedirects = defaultMaxRedirects
	}
	follow := boolOr(h.FollowRedirects, true)
	client.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) > maxRedirects {
			return fmt.Errorf("%w (max %d)", errTooManyRedirects, maxRedirects)
		}
		return nil
	}

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return httpError(req, err)
	}
	defer resp.Body.Close()
	res.StatusCode = resp.StatusCode
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return inPhase("read body", err)
	}
	latency := time.Since(start)
	res.Detail = fmt.Sprintf("%s %d, %d bytes in %s", resp.Proto, resp.StatusCode, len(data), latency.Round(time.Microsecond))

	if !statusOK(resp.StatusCode, h.ExpectStatus) {
		return fmt.Errorf("status %d not in %s", resp.StatusCode, statusList(h.ExpectStatus))
	}
	if h.BodyContains != "" && !bytes.Contains(data, []byte(h.BodyContains)) {
		return fmt.Errorf("body does not contain %q", h.BodyContains)
	}
	if h.BodyRegex != "" {
		re, err := p.regexp(h.BodyRegex)
		if err != nil {
			return fmt.Errorf("http.body_regex: %w", err)
		}
		if !re.Match(data) {
			return fmt.Errorf("body does not match /%s/", h.BodyRegex)
		}
	}
	if len(h.JSON) > 0 {
		if err := checkJSON(data, h.JSON); err != nil {
			return err
		}
	}
	if h.MaxLatency > 0 && latency > h.MaxLatency.D() {
		return fmt.Errorf("latency %s above max_latency %s", latency.Round(time.Millisecond), h.MaxLatency.D())
	}
	return nil
}

// httpError unwraps the *url.Error the client returns and names the phase.
func httpError(req *http.Request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, errTooManyRedirects) {
		return err
	}
	var pe *phaseError
	if errors.As(err, &pe) {
		return err
	}
	return inPhase(req.Method+" "+req.URL.Redacted(), err)
}

func statusOK(code int, expect []int) bool {
	if len(expect) == 0 {
		return code >= 200 && code <= 399
	}
	for _, c := range expect {
		if c == code {
			return true
		}
	}
	return false
}

func statusList(expect []int) string {
	if len(expect) == 0 {
		return "200-399"
	}
	s := make([]string, len(expect))
	for i, c := range expect {
		s[i] = strconv.Itoa(c)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// regexp returns the compiled pattern from the Prober's cache. The cache is
// dropped when it grows past a bound, so specs edited at run time cannot
// grow it without limit.
func (p *Prober) regexp(pattern string) (*regexp.Regexp, error) {
	p.reMu.Lock()
	re, ok := p.regexps[pattern]
	p.reMu.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	p.reMu.Lock()
	if len(p.regexps) >= 1024 {
		clear(p.regexps)
	}
	p.regexps[pattern] = re
	p.reMu.Unlock()
	return re, nil
}

// checkJSON evaluates the JSON-path assertions against the body.
func checkJSON(data []byte, asserts []JSONAssert) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	for i, a := range asserts {
		v, err := jsonLookup(doc, a.Path)
		if err != nil {
			return fmt.Errorf("http.json[%d] %s: %w", i, a.Path, err)
		}
		got, err := jsonText(v)
		if err != nil {
			return fmt.Errorf("http.json[%d] %s: %w", i, a.Path, err)
		}
		if got != a.Equals {
			return fmt.Errorf("json %s is %q, want %q", a.Path, got, a.Equals)
		}
	}
	return nil
}

// jsonLookup walks a dotted path with [i] indexes ("$.items[0].status").
func jsonLookup(doc any, path string) (any, error) {
	rest := strings.TrimPrefix(strings.TrimPrefix(path, "$"), ".")
	cur := doc
	walked := "$"
	for rest != "" {
		if rest[0] == '[' {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [ after %s", walked)
			}
			idx, err := strconv.Atoi(rest[1:end])
			if err != nil || idx < 0 {
				return nil, fmt.Errorf("bad index %q after %s", rest[1:end], walked)
			}
			arr, ok := cur.([]any)
			if !ok {
				return nil, fmt.Errorf("%s is not an array", walked)
			}
			if idx >= len(arr) {
				return nil, fmt.Errorf("%s has %d elements, no index %d", walked, len(arr), idx)
			}
			cur = arr[idx]
			walked += rest[:end+1]
			rest = strings.TrimPrefix(rest[end+1:], ".")
			continue
		}
		end := strings.IndexAny(rest, ".[")
		if end < 0 {
			end = len(rest)
		}
		key := rest[:end]
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not an object", walked)
		}
		v, ok := obj[key]
		if !ok {
			return nil, fmt.Errorf("no key %q in %s", key, walked)
		}
		cur = v
		walked += "." + key
		rest = strings.TrimPrefix(rest[end:], ".")
	}
	return cur, nil
}

// jsonText is the text form a JSONAssert compares: strings unquoted,
// numbers as written, true/false/null, objects and arrays as compact JSON.
func jsonText(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "null", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("encode value: %w", err)
		}
		return string(b), nil
	}
}
