package main

// This file: running one container of a pod to its end.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runContainer runs one container to its end and returns its exit code.
func (r *podRunner) runContainer(ctx context.Context, c corev1.Container, init bool) int {
	statuses := func(s *corev1.PodStatus) *[]corev1.ContainerStatus {
		if init {
			return &s.InitContainerStatuses
		}
		return &s.ContainerStatuses
	}
	cdir := filepath.Join(r.dir, "containers", c.Name)
	spec, readyFile, err := r.containerSpec(ctx, c, cdir)
	var cmd *exec.Cmd
	logFile := filepath.Join(r.dir, "logs", c.Name+".log")
	if err == nil {
		cmd, err = r.startContainer(spec, cdir, logFile)
	}
	prev := r.restartCount(c.Name, init)
	if err != nil {
		r.logf("container %s: %v", c.Name, err)
		r.push(ctx, func(s *corev1.PodStatus) {
			setContainer(statuses(s), corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, RestartCount: prev,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: err.Error(), FinishedAt: metav1.Now()}}})
		})
		return 128
	}
	started := metav1.Now()
	r.push(ctx, func(s *corev1.PodStatus) {
		setContainer(statuses(s), corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, RestartCount: prev, Started: ptr(true),
			Ready: !init && readyFile == "", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}})
		if !init {
			r.updateReady(s)
		}
	})
	done := make(chan struct{})
	if readyFile != "" && !init {
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := os.Stat(readyFile); err == nil {
					r.push(ctx, func(s *corev1.PodStatus) {
						for i := range s.ContainerStatuses {
							if s.ContainerStatuses[i].Name == c.Name {
								s.ContainerStatuses[i].Ready = true
							}
						}
						r.updateReady(s)
					})
					return
				}
			}
		}()
	}
	werr := cmd.Wait()
	close(done)
	r.mu.Lock()
	delete(r.running, c.Name)
	r.mu.Unlock()
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if werr != nil {
		code = 128
	}
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	msg := terminationMessage(c, filepath.Join(cdir, "termination-log"), logFile, code)
	if _, err := os.Stat(readyFile); readyFile != "" && err == nil {
		_ = os.Remove(readyFile)
	}
	r.push(ctx, func(s *corev1.PodStatus) {
		setContainer(statuses(s), corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, RestartCount: prev, Started: ptr(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: reason, Message: msg, StartedAt: started, FinishedAt: metav1.Now()}}})
		if !init {
			r.updateReady(s)
		}
	})
	r.mu.Lock()
	r.bumpRestart(c.Name, init)
	r.mu.Unlock()
	return code
}

// terminationMessage is the file the container wrote at
// terminationMessagePath, or the end of its log when it failed and the
// policy says FallbackToLogsOnError.
func terminationMessage(c corev1.Container, file, logFile string, code int) string {
	if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
		return truncate(string(b), 4096)
	}
	if code == 0 || c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		return ""
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	s := strings.Join(lines, "\n")
	if len(s) > 2048 {
		s = s[len(s)-2048:]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// startContainer starts `nodeagent container SPEC` in a new mount namespace.
func (r *podRunner) startContainer(spec *containerSpec, cdir, logFile string) (*exec.Cmd, error) {
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return nil, err
	}
	// Each run starts from a clean root layer, as a restarted container does.
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.RemoveAll(filepath.Join(cdir, d)); err != nil {
			return nil, err
		}
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	specFile := filepath.Join(cdir, "spec.json")
	if err := os.WriteFile(specFile, body, 0o600); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(r.a.self, "container", specFile)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping() {
		return nil, fmt.Errorf("the pod is being stopped")
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	name := filepath.Base(cdir)
	r.running[name] = cmd
	return cmd, nil
}
