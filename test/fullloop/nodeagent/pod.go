package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// stage is the CephX user ceph-csi maps the pod's RBD volumes with: the
	// node-stage Secret their PersistentVolumes name.
	stage stageUser
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
