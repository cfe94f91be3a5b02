package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// containerSpec is what the agent hands the process that becomes one
// container: it runs in a fresh mount namespace (CLONE_NEWNS), so every
// mount below is its own and goes away with it.
type containerSpec struct {
	Dir          string  // per-container folder on the host: upper, work, root
	Image        string  // the image's root folder: the overlay's lower layer ("" is the host's /)
	Mounts       []mount // volumes, and the host programs the image maps to
	ReadOnlyRoot bool
	UID, GID     *int64
	FSGroup      *int64 // a supplementary group, as the kubelet adds it
	WorkingDir   string
	Argv         []string
	Env          []string
	// Nice is the container's CPU niceness (the agent's --pod-nice).
	Nice int
}

type mount struct {
	Source, Target string
	ReadOnly       bool
	File           bool // a single file (subPath or a program)
}

// containerMain sets up the container's view and execs its command. The
// root is an overlayfs with the image's folder (the host's / unless the spec
// names another) as the read-only lower layer, so the container sees that
// folder's programs and libraries and its writes (mount points included)
// land in its own upper layer.
func containerMain(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: nodeagent container SPEC.json")
	}
	body, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var s containerSpec
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	// The exec below must run on the thread dieWithAgent arms.
	runtime.LockOSThread()
	agent := os.Getppid()
	// Niceness is per thread on Linux: set on the thread that execs, the
	// command and every thread it makes inherit it.
	if s.Nice != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, s.Nice); err != nil {
			return fmt.Errorf("nice %d: %w", s.Nice, err)
		}
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private in the container's mount namespace: %w", err)
	}
	upper, work, root := filepath.Join(s.Dir, "upper"), filepath.Join(s.Dir, "work"), filepath.Join(s.Dir, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	lower := s.Image
	if lower == "" {
		lower = "/"
	}
	if err := syscall.Mount("overlay", root, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		return fmt.Errorf("overlay root: %w", err)
	}
	for _, d := range []string{"/proc", "/sys", "/dev"} {
		if err := syscall.Mount(d, filepath.Join(root, d), "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s: %w", d, err)
		}
	}
	for _, m := range s.Mounts {
		if err := bind(root, m); err != nil {
			return err
		}
	}
	if s.ReadOnlyRoot {
		if err := syscall.Mount("", root, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
	}
	if err := syscall.Chroot(root); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	wd := s.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := os.Chdir(wd); err != nil {
		return fmt.Errorf("workingDir %s: %w", wd, err)
	}
	var groups []int
	if s.GID != nil {
		groups = append(groups, int(*s.GID))
	}
	if s.FSGroup != nil {
		groups = append(groups, int(*s.FSGroup))
	}
	if s.UID != nil {
		if err := syscall.Setgroups(groups); err != nil {
			return err
		}
	}
	if s.GID != nil {
		if err := syscall.Setgid(int(*s.GID)); err != nil {
			return err
		}
	}
	if s.UID != nil {
		if err := syscall.Setuid(int(*s.UID)); err != nil {
			return err
		}
	}
	if len(s.Argv) == 0 {
		return fmt.Errorf("the container has no command")
	}
	if err := dieWithAgent(agent); err != nil {
		return err
	}
	for _, e := range s.Env {
		if k, v, ok := strings.Cut(e, "="); ok && k == "PATH" {
			os.Setenv("PATH", v)
		}
	}
	path, err := exec.LookPath(s.Argv[0])
	if err != nil {
		return fmt.Errorf("command %q: %w", s.Argv[0], err)
	}
	return syscall.Exec(path, s.Argv, s.Env)
}

// dieWithAgent arms the parent-death signal again: the agent starts each
// container with Pdeathsig SIGKILL, but the kernel clears it when the
// process changes its user or group (Setuid above), and a pod with
// runAsUser then outlived a SIGKILLed node (the full loop's disaster) with
// its volumes open. The signal belongs to the calling thread, which must be
// the one that execs; agent is the parent's pid before the change: if it
// is gone already, the signal would never come.
func dieWithAgent(agent int) error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("setting the parent-death signal: %w", err)
	}
	if os.Getppid() != agent {
		return fmt.Errorf("the node agent is gone")
	}
	return nil
}

// inRoot resolves path inside root the way the container will see it:
// symlinks (such as Debian's /var/run -> /run) are followed within root,
// never out to the host's own tree. Missing components are left as they are.
func inRoot(root, path string) (string, error) {
	parts := strings.Split(filepath.Clean("/"+path), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		p := parts[0]
		parts = parts[1:]
		if p == "" || p == "." {
			continue
		}
		next := filepath.Join(cur, p)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many symlinks", path)
		}
		link, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(cur, link)
		}
		parts = append(strings.Split(filepath.Clean(link), "/"), parts...)
		cur = "/"
	}
	return filepath.Join(root, cur), nil
}

// bind mounts one volume or program into the container's root.
func bind(root string, m mount) error {
	target, err := inRoot(root, m.Target)
	if err != nil {
		return err
	}
	if m.File {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(target); os.IsNotExist(err) {
			if err := os.WriteFile(target, nil, 0o644); err != nil {
				return err
			}
		}
	} else if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount(m.Source, target, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("mounting %s at %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		if err := syscall.Mount("", target, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", m.Target, err)
		}
	}
	return nil
}
