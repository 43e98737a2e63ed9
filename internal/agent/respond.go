package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
	"github.com/nocsoc/nocsoc/internal/firewall"
)

// Active-response actions: each is a fixed implementation with validated
// arguments, never a shell. The server's allow-list (fleet) and this one
// must agree; an action missing here is refused by the agent.
const (
	ActionFirewallBlock   = "firewall.block"
	ActionFirewallUnblock = "firewall.unblock"
	ActionFirewallIsolate = "firewall.isolate"
	ActionFirewallRelease = "firewall.release"
	ActionUserLock        = "user.lock"
	ActionUserUnlock      = "user.unlock"
	ActionProcessKill     = "process.kill"
)

// isResponseAction says whether an action changes the host's firewall,
// accounts or processes: those run only with Options.ActiveResponse.
func isResponseAction(name string) bool {
	return strings.HasPrefix(name, "firewall.") || strings.HasPrefix(name, "user.") || name == ActionProcessKill
}

// DefaultBlockDuration is a block's duration when the job names none:
// every block expires, in the kernel too.
const DefaultBlockDuration = 4 * time.Hour

// maxBlockDuration bounds a block (as decision.MaxDuration does).
const maxBlockDuration = 365 * 24 * time.Hour

// ResponderOptions configures the response actions.
type ResponderOptions struct {
	// Runner runs nft/iptables; nil means firewall.ExecRunner{}.
	Runner firewall.Runner
	// Firewall, when set, is used instead of detecting a backend with
	// Runner (tests).
	Firewall firewall.Firewall
	// Guard lists addresses the agent never blocks, whatever the server
	// asks: loopback is always added, and the agent adds its server's
	// addresses. Isolation always keeps Servers reachable.
	Guard   []netip.Prefix
	Servers []netip.Addr
	// Usermod is the usermod program; "" means "usermod" on PATH.
	Usermod string
	// Now is the clock of result times; nil means time.Now.
	Now func() time.Time
}

// Responder runs the active-response job actions on this host.
type Responder struct {
	o    ResponderOptions
	mu   sync.Mutex
	fw   firewall.Firewall
	self int
}

// NewResponder returns a Responder. The firewall backend is detected on
// first use, so an agent on a host without nft still starts.
func NewResponder(o ResponderOptions) *Responder {
	if o.Runner == nil {
		o.Runner = firewall.ExecRunner{}
	}
	if o.Usermod == "" {
		o.Usermod = "usermod"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Guard = append([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, o.Guard...)
	for _, a := range o.Servers {
		a = a.Unmap()
		o.Guard = append(o.Guard, netip.PrefixFrom(a, a.BitLen()))
	}
	return &Responder{o: o, fw: o.Firewall, self: os.Getpid()}
}

// responder is the Responder the registered response actions run on. The
// job-action registry is process-wide (RegisterAction), so this is too;
// UseResponder swaps it (tests run the firewall inside a network
// namespace).
var responder atomic.Pointer[Responder]

func init() {
	r := NewResponder(ResponderOptions{})
	responder.Store(r)
	for name := range r.Actions() {
		RegisterAction(name, func(ctx context.Context, job agentproto.Job) agentproto.JobResult {
			return responder.Load().Actions()[name](ctx, job)
		})
	}
}

// UseResponder makes the registered response actions run on r and
// returns the previous Responder.
func UseResponder(r *Responder) *Responder { return responder.Swap(r) }

// Actions returns the response actions by name, in the job-action shape
// (agent.RegisterAction takes each).
func (r *Responder) Actions() map[string]func(context.Context, agentproto.Job) agentproto.JobResult {
	return map[string]func(context.Context, agentproto.Job) agentproto.JobResult{
		ActionFirewallBlock:   r.wrap(r.block),
		ActionFirewallUnblock: r.wrap(r.unblock),
		ActionFirewallIsolate: r.wrap(r.isolate),
		ActionFirewallRelease: r.wrap(r.release),
		ActionUserLock:        r.wrap(r.lockUser),
		ActionUserUnlock:      r.wrap(r.unlockUser),
		ActionProcessKill:     r.wrap(r.killProcess),
	}
}

// refusal marks bad arguments and guard hits: the job is refused, not
// failed, and nothing was changed.
type refusal struct{ msg string }

func (e *refusal) Error() string { return e.msg }

func refuse(format string, args ...any) error { return &refusal{fmt.Sprintf(format, args...)} }

func (r *Responder) wrap(fn func(ctx context.Context, args map[string]string) (string, error)) func(context.Context, agentproto.Job) agentproto.JobResult {
	return func(ctx context.Context, job agentproto.Job) agentproto.JobResult {
		res := agentproto.JobResult{JobID: job.ID, StartedAt: r.o.Now().UTC()}
		out, err := fn(ctx, job.Args)
		res.FinishedAt = r.o.Now().UTC()
		res.Output = agentproto.TailOutput(out)
		var rf *refusal
		switch {
		case err == nil:
			res.Status = agentproto.JobSucceeded
		case errors.As(err, &rf):
			res.Status, res.Error, res.ExitCode = agentproto.JobRefused, job.Action+": "+err.Error(), -1
		case ctx.Err() != nil:
			res.Status, res.Error, res.ExitCode = agentproto.JobTimeout, job.Action+": "+err.Error(), -1
		default:
			res.Status, res.Error, res.ExitCode = agentproto.JobFailed, job.Action+": "+err.Error(), 1
		}
		return res
	}
}

func (r *Responder) firewall(ctx context.Context) (firewall.Firewall, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fw != nil {
		return r.fw, nil
	}
	fw, err := firewall.New(ctx, r.o.Runner)
	if err != nil {
		return nil, err
	}
	r.fw = fw
	return fw, nil
}

func (r *Responder) target(args map[string]string) (netip.Prefix, error) {
	v := strings.TrimSpace(args["value"])
	if v == "" {
		return netip.Prefix{}, refuse("args.value is required (an IP address or CIDR range)")
	}
	p, err := firewall.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, refuse("args.value: %v", err)
	}
	return p, nil
}

func (r *Responder) block(ctx context.Context, args map[string]string) (string, error) {
	p, err := r.target(args)
	if err != nil {
		return "", err
	}
	for _, g := range r.o.Guard {
		if g.Overlaps(p) {
			return "", refuse("%s is allow-listed on this agent (covered by %s) and is never blocked", p, g)
		}
	}
	d := DefaultBlockDuration
	if s := strings.TrimSpace(args["duration"]); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 || v > maxBlockDuration {
			return "", refuse("args.duration: %q is not a positive duration up to %s", s, maxBlockDuration)
		}
		d = v
	}
	fw, err := r.firewall(ctx)
	if err != nil {
		return "", err
	}
	if err := fw.Block(ctx, p, d); err != nil {
		return "", err
	}
	return fmt.Sprintf("blocked %s for %s (%s)\n", p, d, fw.Name()), nil
}

func (r *Responder) unblock(ctx context.Context, args map[string]string) (string, error) {
	p, err := r.target(args)
	if err != nil {
		return "", err
	}
	fw, err := r.firewall(ctx)
	if err != nil {
		return "", err
	}
	if err := fw.Unblock(ctx, p); err != nil {
		return "", err
	}
	return fmt.Sprintf("unblocked %s (%s)\n", p, fw.Name()), nil
}

// splitList reads a comma- or space-separated argument.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })
}

func (r *Responder) isolate(ctx context.Context, args map[string]string) (string, error) {
	spec := firewall.IsolateSpec{Servers: append([]netip.Addr(nil), r.o.Servers...)}
	for _, s := range splitList(args["servers"]) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return "", refuse("args.servers: %q is not an IP address", s)
		}
		spec.Servers = append(spec.Servers, a.Unmap())
	}
	for _, s := range splitList(args["allow"]) {
		p, err := firewall.ParsePrefix(s)
		if err != nil {
			return "", refuse("args.allow: %v", err)
		}
		spec.Allow = append(spec.Allow, p)
	}
	if len(spec.Servers) == 0 {
		return "", refuse("no server address known: pass args.servers, or the host could never be released")
	}
	fw, err := r.firewall(ctx)
	if err != nil {
		return "", err
	}
	if err := fw.Isolate(ctx, spec); err != nil {
		return "", err
	}
	return fmt.Sprintf("isolated: only loopback, servers %v and allow-list %v remain reachable (%s)\n", spec.Servers, spec.Allow, fw.Name()), nil
}

func (r *Responder) release(ctx context.Context, _ map[string]string) (string, error) {
	fw, err := r.firewall(ctx)
	if err != nil {
		return "", err
	}
	if err := fw.Release(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("released isolation (%s)\n", fw.Name()), nil
}

// userRe is a POSIX-portable login name; it cannot start with "-", so it
// is never read as an option.
var userRe = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}\$?$`)

func (r *Responder) user(args map[string]string) (string, error) {
	u := strings.TrimSpace(args["user"])
	switch {
	case u == "":
		return "", refuse("args.user is required")
	case !userRe.MatchString(u):
		return "", refuse("args.user: %q is not a login name", u)
	case u == "root":
		return "", refuse("refusing to lock or unlock root: that would lock out the host's administrators")
	}
	return u, nil
}

func (r *Responder) usermod(ctx context.Context, args ...string) (string, error) {
	path, err := exec.LookPath(r.o.Usermod)
	if err != nil {
		return "", fmt.Errorf("%s not found (Debian package passwd): %w", r.o.Usermod, err)
	}
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("usermod %s: %s: %w", strings.Join(args, " "), strings.TrimSpace(string(out)), err)
	}
	return string(out), nil
}

// lockUser locks the password (usermod -L) and expires the account
// (-e 1, 1970-01-02), which also stops key-based logins.
func (r *Responder) lockUser(ctx context.Context, args map[string]string) (string, error) {
	u, err := r.user(args)
	if err != nil {
		return "", err
	}
	out, err := r.usermod(ctx, "-L", "-e", "1", "--", u)
	if err != nil {
		return out, err
	}
	return out + fmt.Sprintf("locked user %s (password locked, account expired)\n", u), nil
}

// unlockUser reverses lockUser: unlocks the password and clears the
// expiry.
func (r *Responder) unlockUser(ctx context.Context, args map[string]string) (string, error) {
	u, err := r.user(args)
	if err != nil {
		return "", err
	}
	out, err := r.usermod(ctx, "-U", "-e", "", "--", u)
	if err != nil {
		return out, err
	}
	return out + fmt.Sprintf("unlocked user %s\n", u), nil
}

// killProcess signals args.pid only if its name is args.name, so a pid
// reused by another process since the detection is never killed.
func (r *Responder) killProcess(ctx context.Context, args map[string]string) (string, error) {
	pid, err := strconv.Atoi(strings.TrimSpace(args["pid"]))
	if err != nil || pid < 1 {
		return "", refuse("args.pid: %q is not a process id", args["pid"])
	}
	want := strings.TrimSpace(args["name"])
	if want == "" {
		return "", refuse("args.name is required: the expected process name guards against a reused pid")
	}
	if pid == 1 || pid == r.self {
		return "", refuse("refusing to kill pid %d (init or the agent itself)", pid)
	}
	sig := syscall.SIGKILL
	switch strings.ToUpper(strings.TrimSpace(args["signal"])) {
	case "", "KILL", "SIGKILL":
	case "TERM", "SIGTERM":
		sig = syscall.SIGTERM
	default:
		return "", refuse("args.signal: %q is not TERM or KILL", args["signal"])
	}
	names, err := processNames(pid)
	if err != nil {
		return "", refuse("pid %d: %v", pid, err)
	}
	match := false
	for _, n := range names {
		// comm holds at most 15 bytes of the name.
		if n == want || (len(want) > 15 && n == want[:15]) {
			match = true
		}
	}
	if !match {
		return "", refuse("pid %d is %q, not %q: the pid was probably reused; nothing killed", pid, names[0], want)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return "", fmt.Errorf("kill %d: %w", pid, err)
	}
	return fmt.Sprintf("sent %s to pid %d (%s)\n", sig, pid, want), nil
}

// processNames returns the names pid goes by: /proc/PID/comm (cut to 15
// bytes by the kernel) and the base name of its executable.
func processNames(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("no such process")
	}
	if err != nil {
		return nil, err
	}
	names := []string{strings.TrimSpace(string(b))}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
		names = append(names, filepath.Base(strings.TrimSuffix(exe, " (deleted)")))
	}
	return names, nil
}
