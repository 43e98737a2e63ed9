package ingest

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Framing modes of a stream, chosen per connection by its first byte.
const (
	modeUnknown = iota
	modeOctet   // RFC 6587 octet counting: "LEN SP MSG"
	modeLine    // RFC 6587 non-transparent framing: MSG LF
)

// frame is one message cut from a stream. data is only valid until the
// next call to next.
type frame struct {
	data []byte
	frameInfo
}

// framer cuts syslog messages out of a byte stream. All of its state lives
// in the struct, so a read error such as a deadline used to flush a batch
// can be returned and next called again without losing anything.
type framer struct {
	r       io.Reader
	maxLine int
	mode    int

	buf        []byte
	start, end int
	err        error // sticky read error (io.EOF or a real error)

	// Octet counting: bytes of an over-long frame still to discard.
	skip int
	// Line framing: the head of an over-long line, kept until its end.
	long    []byte
	longLen int
}

func newFramer(r io.Reader, maxLine int) *framer {
	// Room for the longest frame plus its header, so a whole frame always
	// fits once the buffer is compacted.
	size := maxLine + 16
	if size < 4096 {
		size = 4096
	}
	return &framer{r: r, maxLine: maxLine, buf: make([]byte, size)}
}

// errNoProgress means the buffer is full; it cannot happen while frames
// fit the buffer, and guards against a busy loop if they ever do not.
var errNoProgress = errors.New("no progress")

// fill reads more data, compacting the buffer first. It returns the read
// error, if any; io.EOF is sticky.
func (f *framer) fill() error {
	if f.err != nil {
		return f.err
	}
	if f.start > 0 {
		n := copy(f.buf, f.buf[f.start:f.end])
		f.start, f.end = 0, n
	}
	if f.end == len(f.buf) {
		return errNoProgress
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.end += n
	if err != nil {
		if n > 0 {
			// Deliver the data first; the error comes back on the next
			// read (io.Reader allows either).
			if errors.Is(err, io.EOF) {
				f.err = io.EOF
			}
			return nil
		}
		if errors.Is(err, io.EOF) || !isTimeout(err) {
			f.err = err
		}
		return err
	}
	return nil
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// next returns the next frame. At the end of the stream it returns io.EOF
// (after any incomplete frame, which is returned flagged); a timeout error
// leaves the state intact.
func (f *framer) next() (frame, error) {
	for {
		if f.mode == modeUnknown {
			for f.start < f.end && isSpace(f.buf[f.start]) {
				f.start++
			}
			if f.start == f.end {
				if err := f.fill(); err != nil {
					return frame{}, err
				}
				continue
			}
			if c := f.buf[f.start]; c >= '1' && c <= '9' {
				f.mode = modeOctet
			} else {
				f.mode = modeLine
			}
		}
		var fr frame
		var ok bool
		var err error
		if f.mode == modeOctet {
			fr, ok, err = f.nextOctet()
		} else {
			fr, ok, err = f.nextLine()
		}
		if ok || err != nil {
			return fr, err
		}
	}
}

func isSpace(c byte) bool { return c == '\n' || c == '\r' || c == ' ' || c == '\t' }

// nextOctet reads one octet-counted frame. ok=false with err=nil means
// "call again" (more data was read or state advanced).
func (f *framer) nextOctet() (frame, bool, error) {
	if f.skip > 0 {
		n := min(f.skip, f.end-f.start)
		f.skip -= n
		f.start += n
		if f.skip > 0 {
			if err := f.fill(); err != nil {
				if errors.Is(err, io.EOF) {
					f.skip = 0
				}
				return frame{}, false, err
			}
		}
		return frame{}, false, nil
	}
	// Senders that add LF after each frame are common; tolerate them.
	for f.start < f.end && (f.buf[f.start] == '\n' || f.buf[f.start] == '\r') {
		f.start++
	}
	avail := f.buf[f.start:f.end]
	if len(avail) == 0 {
		return frame{}, false, f.fill()
	}
	// Header: 1-9 digits, no leading zero, then SP.
	n, hl, status := parseOctetHeader(avail)
	switch status {
	case headerNeedMore:
		if err := f.fill(); err != nil {
			if errors.Is(err, io.EOF) && f.start < f.end {
				return f.takeJunk(f.end, "incomplete frame header at end of stream"), true, nil
			}
			return frame{}, false, err
		}
		return frame{}, false, nil
	case headerBad:
		// A wrong octet count leaves us mid-message. Keep the bytes up to
		// the next plausible header as their own flagged event.
		if p := findOctetHeader(avail[1:]); p >= 0 {
			return f.takeJunk(f.start+1+p, "octet counting: invalid frame header; resynchronised"), true, nil
		}
		if len(avail) >= f.maxLine || f.err != nil {
			// Keep a tail that may be the start of the next header.
			cut := f.end
			if f.err == nil {
				cut = f.end - 10
			}
			return f.takeJunk(cut, "octet counting: invalid frame header; resynchronised"), true, nil
		}
		if err := f.fill(); err != nil && !errors.Is(err, io.EOF) {
			return frame{}, false, err
		}
		return frame{}, false, nil
	}
	want := min(n, f.maxLine)
	if len(avail)-hl < want {
		if err := f.fill(); err != nil {
			if errors.Is(err, io.EOF) {
				got := f.end - f.start - hl
				fr := frame{data: f.buf[f.start+hl : f.end]}
				fr.note = "incomplete frame at end of stream: expected " + strconv.Itoa(n) + " bytes, got " + strconv.Itoa(got)
				f.start = f.end
				return fr, true, nil
			}
			return frame{}, false, err
		}
		return frame{}, false, nil
	}
	fr := frame{data: f.buf[f.start+hl : f.start+hl+want]}
	f.start += hl + want
	if n > want {
		fr.origLen, fr.maxLine = n, f.maxLine
		f.skip = n - want
	}
	return fr, true, nil
}

func (f *framer) takeJunk(to int, note string) frame {
	// Junk longer than max_line is split, not truncated: it was received
	// and is kept.
	to = min(to, f.start+f.maxLine)
	fr := frame{data: bytes.TrimRight(f.buf[f.start:to], "\r\n")}
	fr.note = note
	f.start = to
	return fr
}

const (
	headerOK = iota
	headerNeedMore
	headerBad
)

// parseOctetHeader reads "LEN SP" at the start of b.
func parseOctetHeader(b []byte) (n, headerLen, status int) {
	if len(b) == 0 {
		return 0, 0, headerNeedMore
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, 0, headerBad
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			if i >= 9 {
				return 0, 0, headerBad
			}
			n = n*10 + int(c-'0')
		case c == ' ':
			return n, i + 1, headerOK
		default:
			return 0, 0, headerBad
		}
	}
	return 0, 0, headerNeedMore
}

// findOctetHeader finds the next position that looks like the start of a
// frame: a digit string not preceded by a digit, a space and '<'.
func findOctetHeader(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] < '1' || b[i] > '9' || (i > 0 && b[i-1] >= '0' && b[i-1] <= '9') {
			continue
		}
		j := i
		for j < len(b) && j-i < 9 && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j+1 < len(b) && b[j] == ' ' && b[j+1] == '<' {
			return i
		}
	}
	return -1
}

// nextLine reads one LF-terminated line.
func (f *framer) nextLine() (frame, bool, error) {
	avail := f.buf[f.start:f.end]
	if i := bytes.IndexByte(avail, '\n'); i >= 0 {
		line := avail[:i]
		f.start += i + 1
		if f.long != nil {
			fr := frame{data: f.long}
			fr.origLen, fr.maxLine = f.longLen+len(line), f.maxLine
			f.long, f.longLen = nil, 0
			return fr, true, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			return frame{}, false, nil // blank lines are not messages
		}
		if len(line) > f.maxLine {
			fr := frame{data: line[:f.maxLine]}
			fr.origLen, fr.maxLine = len(line), f.maxLine
			return fr, true, nil
		}
		return frame{data: line}, true, nil
	}
	if f.long != nil {
		f.longLen += len(avail)
		f.start = f.end
	} else if len(avail) > f.maxLine {
		f.long = append([]byte(nil), avail[:f.maxLine]...)
		f.longLen = len(avail)
		f.start = f.end
	}
	if err := f.fill(); err != nil {
		if errors.Is(err, io.EOF) {
			if f.long != nil {
				fr := frame{data: f.long}
				fr.origLen, fr.maxLine = f.longLen, f.maxLine
				f.long, f.longLen = nil, 0
				return fr, true, nil
			}
			if f.start < f.end {
				// A last line without LF: a normal way to end a stream.
				fr := frame{data: bytes.TrimSuffix(f.buf[f.start:f.end], []byte{'\r'})}
				f.start = f.end
				if len(fr.data) > 0 {
					return fr, true, nil
				}
			}
		}
		return frame{}, false, err
	}
	return frame{}, false, nil
}
