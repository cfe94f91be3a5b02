package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// podRunner runs one pod: volumes, init containers in order, then the
// containers, restarting them as restartPolicy says, and writes the pod's
// status back.
type podRunner struct {
	a   *agent
	pod *corev1.Pod
	dir string

	mu        sync.Mutex
	status    corev1.PodStatus
	running   map[string]*exec.Cmd
	deleting  chan struct{}
	delOnce   sync.Once
	killed    chan struct{}
	killOnce  sync.Once
	restarts  map[string]int32
	volumes   map[string]string // volume name -> host folder
	rbdImages []string          // pool/image of each RBD-backed volume, for the app stand-in
}

func newPodRunner(a *agent, pod *corev1.Pod) *podRunner {
	return &podRunner{a: a, pod: pod.DeepCopy(), dir: filepath.Join(a.dir, "pods", string(pod.UID)),
		running: map[string]*exec.Cmd{}, restarts: map[string]int32{}, deleting: make(chan struct{}), killed: make(chan struct{})}
}

func (r *podRunner) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "nodeagent: %s/%s: %s\n", r.pod.Namespace, r.pod.Name, fmt.Sprintf(format, args...))
}

// terminate is a deletion request from the API: stop the containers, then
// let the pod go.
func (r *podRunner) terminate(pod *corev1.Pod) {
	r.delOnce.Do(func() {
		close(r.deleting)
		go r.stopContainers(pod)
	})
}

// stopContainers sends SIGTERM to every container, and SIGKILL to those
// still running after the pod's grace period (at most 30 s here).
func (r *podRunner) stopContainers(pod *corev1.Pod) {
	grace := 30 * time.Second
	if g := pod.DeletionGracePeriodSeconds; g != nil && time.Duration(*g)*time.Second < grace {
		grace = time.Duration(*g) * time.Second
	}
	r.signalAll(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := len(r.running)
		r.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.signalAll(syscall.SIGKILL)
}

// kill stops everything at once (the pod is gone, or the agent stops).
func (r *podRunner) kill() {
	r.killOnce.Do(func() { close(r.killed) })
	r.signalAll(syscall.SIGKILL)
}

func (r *podRunner) signalAll(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.running {
		if c.Process != nil {
			_ = syscall.Kill(-c.Process.Pid, sig)
		}
	}
}

func (r *podRunner) stopping() bool {
	select {
	case <-r.deleting:
		return true
	case <-r.killed:
		return true
	default:
		return false
	}
}

// push writes the pod's status, as the kubelet does, with the node's identity.
func (r *podRunner) push(ctx context.Context, mutate func(s *corev1.PodStatus)) {
	r.mu.Lock()
	mutate(&r.status)
	status := *r.status.DeepCopy()
	r.mu.Unlock()
	pods := r.a.client.CoreV1().Pods(r.pod.Namespace)
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := pods.Get(ctx, r.pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != r.pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), r.pod.Name)
		}
		cur.Status = status
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		r.logf("status: %v", err)
	}
}

func condition(t corev1.PodConditionType, ok bool) corev1.PodCondition {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
	}
	return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()}
}

func setCondition(s *corev1.PodStatus, c corev1.PodCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status != c.Status {
				s.Conditions[i] = c
			}
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}

func setContainer(list *[]corev1.ContainerStatus, cs corev1.ContainerStatus) {
	for i := range *list {
		if (*list)[i].Name == cs.Name {
			(*list)[i] = cs
			return
		}
	}
	*list = append(*list, cs)
}

func (r *podRunner) run(ctx context.Context) {
	defer r.finish(ctx)
	now := metav1.Now()
	r.push(ctx, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.StartTime = &now
		s.HostIP, s.PodIP = "127.0.0.1", "127.0.0.1"
		s.HostIPs, s.PodIPs = []corev1.HostIP{{IP: "127.0.0.1"}}, []corev1.PodIP{{IP: "127.0.0.1"}}
		setCondition(s, condition(corev1.PodScheduled, true))
		setCondition(s, condition(corev1.PodInitialized, len(r.pod.Spec.InitContainers) == 0))
		setCondition(s, condition(corev1.ContainersReady, false))
		setCondition(s, condition(corev1.PodReady, false))
		for _, c := range r.pod.Spec.InitContainers {
			setContainer(&s.InitContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}})
		}
		for _, c := range r.pod.Spec.Containers {
			setContainer(&s.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}})
		}
	})
	// Volumes: retried while what they need (a Secret, a ConfigMap) is missing.
	for {
		err := r.setUpVolumes(ctx)
		if err == nil {
			break
		}
		r.logf("volumes: %v", err)
		r.push(ctx, func(s *corev1.PodStatus) {
			for i := range s.ContainerStatuses {
				s.ContainerStatuses[i].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: err.Error()}}
			}
		})
		if r.sleep(2 * time.Second) {
			return
		}
	}
	policy := r.pod.Spec.RestartPolicy
	for _, c := range r.pod.Spec.InitContainers {
		for {
			code := r.runContainer(ctx, c, true)
			if r.stopping() {
				return
			}
			if code == 0 {
				break
			}
			if policy == corev1.RestartPolicyNever {
				r.push(ctx, func(s *corev1.PodStatus) { s.Phase = corev1.PodFailed; s.Reason = "InitContainerFailed" })
				return
			}
			if r.sleep(time.Second) {
				return
			}
		}
	}
	r.push(ctx, func(s *corev1.PodStatus) {
		setCondition(s, condition(corev1.PodInitialized, true))
		s.Phase = corev1.PodRunning
	})
	var wg sync.WaitGroup
	codes := make([]int, len(r.pod.Spec.Containers))
	for i, c := range r.pod.Spec.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			backoff := time.Second
			for {
				codes[i] = r.runContainer(ctx, c, false)
				if r.stopping() {
					return
				}
				if policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && codes[i] == 0) {
					return
				}
				if r.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, 10*time.Second)
			}
		}()
	}
	wg.Wait()
	if r.stopping() {
		return
	}
	phase := corev1.PodSucceeded
	for _, code := range codes {
		if code != 0 {
			phase = corev1.PodFailed
		}
	}
	r.push(ctx, func(s *corev1.PodStatus) {
		s.Phase = phase
		setCondition(s, condition(corev1.PodReady, false))
		setCondition(s, condition(corev1.ContainersReady, false))
	})
}

// sleep waits d, or less when the pod is being stopped (then true).
func (r *podRunner) sleep(d time.Duration) bool {
	select {
	case <-r.deleting:
		return true
	case <-r.killed:
		return true
	case <-time.After(d):
		return false
	}
}

// finish runs once the pod has nothing left to run: when it is being
// deleted, stop its containers within the grace period and complete the
// deletion; always wait for the deletion before cleaning up.
func (r *podRunner) finish(ctx context.Context) {
	select {
	case <-r.deleting:
	case <-r.killed:
	case <-ctx.Done():
	}
	grace := 30 * time.Second
	if g := r.pod.Spec.TerminationGracePeriodSeconds; g != nil && time.Duration(*g)*time.Second < grace {
		grace = time.Duration(*g) * time.Second
	}
	r.signalAll(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := len(r.running)
		r.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.signalAll(syscall.SIGKILL)
	for {
		r.mu.Lock()
		n := len(r.running)
		r.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-r.deleting:
		r.a.forget(context.Background(), r.pod)
	default:
	}
	if err := os.RemoveAll(r.dir); err != nil {
		r.logf("cleanup: %v", err)
	}
	r.a.gone(r.pod.UID)
}

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

// restartCount and bumpRestart keep each container's restarts.
func (r *podRunner) restartCount(name string, init bool) int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarts[fmt.Sprint(init, name)]
}

func (r *podRunner) bumpRestart(name string, init bool) { r.restarts[fmt.Sprint(init, name)]++ }

// updateReady sets the pod's Ready conditions from its containers.
func (r *podRunner) updateReady(s *corev1.PodStatus) {
	all := len(s.ContainerStatuses) > 0
	for _, cs := range s.ContainerStatuses {
		all = all && cs.Ready
	}
	setCondition(s, condition(corev1.ContainersReady, all))
	setCondition(s, condition(corev1.PodReady, all))
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
