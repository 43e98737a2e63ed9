package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// maxTCPRead bounds what a tcp check buffers while waiting for expect.
const maxTCPRead = 64 << 10

func (p *Prober) probeTCP(ctx context.Context, s Spec, res *Result) error {
	conn, err := p.dial(ctx, s.Target)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer bindConn(ctx, conn)()
	res.Detail = "connected to " + conn.RemoteAddr().String()

	t := s.TCP
	if t == nil {
		return nil
	}
	if t.Send != "" {
		if _, err := io.WriteString(conn, t.Send); err != nil {
			return inPhase("send", err)
		}
	}
	if t.Expect == "" {
		return nil
	}
	want := []byte(t.Expect)
	buf := make([]byte, 0, 512)
	chunk := make([]byte, 4096)
	for {
		n, err := conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if bytes.Contains(buf, want) {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("connection closed before %q was received (got %s)", t.Expect, quote(buf))
			}
			if ctx.Err() != nil || isTimeout(err) {
				return fmt.Errorf("%q not received within %s (got %s)", t.Expect, s.Timeout, quote(buf))
			}
			return inPhase("read", err)
		}
		if len(buf) > maxTCPRead {
			return fmt.Errorf("%q not found in the first %d bytes (got %s)", t.Expect, len(buf), quote(buf))
		}
	}
}
