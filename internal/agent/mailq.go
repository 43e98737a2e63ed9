package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// MetricMailQueue is the number of messages in the local MTA's queue,
// labelled mta=postfix or mta=exim. It is sent only where one of them is
// installed.
const MetricMailQueue = "mail.queue.messages"

// mailQueueTimeout bounds one queue listing: a huge queue or a hung MTA
// must not stall the agent's cycle.
const mailQueueTimeout = 20 * time.Second

// mailQueue counts the messages in the mail queue with `postqueue -j`
// (Postfix: one JSON object per message) or `exim -bpc` (Exim: the
// count). ok is false when neither program exists; err is set when one
// exists but failed.
func mailQueue(ctx context.Context) (n int, mta string, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, mailQueueTimeout)
	defer cancel()
	if p, lerr := exec.LookPath("postqueue"); lerr == nil {
		out, err := runQuiet(ctx, p, "-j")
		if err != nil {
			return 0, "postfix", true, err
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) > 0 && line[0] == '{' {
				n++
			}
		}
		return n, "postfix", true, sc.Err()
	}
	for _, name := range []string{"exim", "exim4"} {
		p, lerr := exec.LookPath(name)
		if lerr != nil {
			continue
		}
		out, err := runQuiet(ctx, p, "-bpc")
		if err != nil {
			return 0, "exim", true, err
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			return 0, "exim", true, fmt.Errorf("%s -bpc printed %q, not a count", name, quoteShort(out))
		}
		return v, "exim", true, nil
	}
	return 0, "", false, nil
}

// runQuiet runs a program and returns its standard output; a failure
// includes the start of its standard error.
func runQuiet(ctx context.Context, prog string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: timed out after %s", prog, strings.Join(args, " "), mailQueueTimeout)
		}
		return nil, fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, quoteShort(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

func quoteShort(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// mailQueueSamples is the mail queue metric, or nothing.
func (a *Agent) mailQueueSamples(ctx context.Context, now time.Time) []agentproto.Sample {
	n, mta, ok, err := mailQueue(ctx)
	if !ok {
		return nil
	}
	if err != nil {
		a.log.Warn("mail queue not read", "mta", mta, "err", err)
		return nil
	}
	return []agentproto.Sample{{Time: now, Name: MetricMailQueue, Labels: map[string]string{"mta": mta}, Value: float64(n)}}
}
