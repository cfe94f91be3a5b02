package fullloop

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one daemon the suite started: its own process group (so its
// children go with it), its log in the run folder, stopped by PID.
type proc struct {
	name string
	env  []string
	bin  string
	args []string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // set when done is closed
	// stopped is set when the suite itself ended it (a disaster, the end).
	stopped bool
}

var (
	procsMu sync.Mutex
	procs   []*proc // in start order; stopAll stops them in reverse
)

// start runs bin with args and env (added to the suite's own) in the
// background, logging to logDir/name.log.
func start(logDir, name string, env []string, bin string, args ...string) (*proc, error) {
	logFile := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Pdeathsig: if the test binary dies, the daemon dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, env: env, bin: bin, args: args, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p, nil
}

// restart starts the same command again after it was stopped or killed
// (the lost site returns), logging to the same file.
func (p *proc) restart() (*proc, error) {
	return start(filepath.Dir(p.log), p.name, p.env, p.bin, p.args...)
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process group the suite started.
func (p *proc) signal(sig syscall.Signal) {
	if p.running() {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// kill is the disaster: SIGKILL, no grace.
func (p *proc) kill() {
	p.stopped = true
	p.signal(syscall.SIGKILL)
	<-p.done
}

// tail is the end of the daemon's log, for a failure message.
func (p *proc) tail(lines int) string {
	body, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(body), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// exited reports a daemon that died on its own.
func (p *proc) exited() error {
	if p.stopped || p.running() {
		return nil
	}
	return fmt.Errorf("%s exited (%v); end of %s:\n%s", p.name, p.err, p.log, p.tail(30))
}

// stopAll stops every daemon the suite started: SIGTERM to all, then
// SIGKILL to whatever still runs after a grace period.
func stopAll() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for _, p := range procs {
		p.stopped = true
		p.signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(time.Until(deadline)):
			p.kill()
		}
	}
	procs = nil
}

// checkAlive is the first error of any daemon that died.
func checkAlive() error {
	procsMu.Lock()
	defer procsMu.Unlock()
	var errs []error
	for _, p := range procs {
		if err := p.exited(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
