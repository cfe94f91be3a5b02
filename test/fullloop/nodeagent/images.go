package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// imageMap says what runs for which image: there is no image store here,
// the host's programs are the images, and a Debian root folder with the
// lab's Ceph release (hack/ceph-root) is Rook's image and the app's.
type imageMap struct {
	ours, ourBinary string
	ceph            string
	cephRoot        string // "" is the host's /
	cephConf        string
	podNice         int // every container's niceness
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// containerSpec turns a container of the pod into what `nodeagent
// container` runs, and the host file that appears once it is ready ("" when
// it is ready as soon as it runs).
func (r *podRunner) containerSpec(ctx context.Context, c corev1.Container, cdir string) (*containerSpec, string, error) {
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return nil, "", err
	}
	term := filepath.Join(cdir, "termination-log")
	if err := os.WriteFile(term, nil, 0o666); err != nil {
		return nil, "", err
	}
	termPath := c.TerminationMessagePath
	if termPath == "" {
		termPath = corev1.TerminationMessagePathDefault
	}
	s := &containerSpec{Dir: cdir, WorkingDir: c.WorkingDir, Mounts: []mount{{Source: term, Target: termPath, File: true}}, Nice: r.a.images.podNice}
	r.mu.Lock()
	vols := r.volumes
	images := r.rbdImages
	stage := r.stage
	r.mu.Unlock()
	for _, vm := range c.VolumeMounts {
		src, ok := vols[vm.Name]
		if !ok {
			return nil, "", fmt.Errorf("volumeMount %s: no such volume", vm.Name)
		}
		m := mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly}
		if vm.SubPath != "" {
			m.Source = filepath.Join(src, filepath.FromSlash(vm.SubPath))
			if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
				m.File = true
			}
		}
		s.Mounts = append(s.Mounts, m)
	}
	sc := r.pod.Spec.SecurityContext
	if sc != nil {
		s.UID, s.GID, s.FSGroup = sc.RunAsUser, sc.RunAsGroup, sc.FSGroup
	}
	if c.SecurityContext != nil {
		if c.SecurityContext.RunAsUser != nil {
			s.UID = c.SecurityContext.RunAsUser
		}
		if c.SecurityContext.RunAsGroup != nil {
			s.GID = c.SecurityContext.RunAsGroup
		}
		s.ReadOnlyRoot = c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem
	}
	if s.UID != nil && s.GID == nil {
		s.GID = s.UID
	}
	env, err := r.env(ctx, c)
	if err != nil {
		return nil, "", err
	}
	s.Env = env
	argv := append(append([]string{}, c.Command...), c.Args...)
	ready := ""
	img := r.a.images
	switch c.Image {
	case img.ours:
		// The project's image: its binary on PATH, the entrypoint when no command.
		s.Mounts = append(s.Mounts, mount{Source: img.ourBinary, Target: "/usr/local/bin/argocd-rbd-dr", ReadOnly: true, File: true})
		if len(c.Command) == 0 {
			argv = append([]string{"argocd-rbd-dr"}, c.Args...)
		}
	case img.ceph:
		// Rook's image: the Ceph root's rbd and ceph, as they are.
		s.Image = img.cephRoot
	default:
		// The app: it opens its RBD volumes itself, as the image would
		// through the kernel's mapping.
		statusDir := filepath.Join(cdir, "status")
		if err := os.MkdirAll(statusDir, 0o777); err != nil {
			return nil, "", err
		}
		ready = filepath.Join(statusDir, "ready")
		_ = os.Remove(ready)
		s.Mounts = append(s.Mounts,
			mount{Source: r.a.self, Target: "/usr/local/bin/rbd-dr-app", ReadOnly: true, File: true},
			mount{Source: statusDir, Target: "/run/rbd-dr-app"})
		// The volumes are opened as ceph-csi maps them: with the user and
		// key of the node-stage Secret their PersistentVolumes name.
		id := "none"
		if len(images) > 0 {
			keyring := filepath.Join(cdir, "keyring")
			if err := os.WriteFile(keyring, []byte(fmt.Sprintf("[client.%s]\n\tkey = %s\n", stage.id, stage.key)), 0o600); err != nil {
				return nil, "", err
			}
			id = stage.id
			s.Mounts = append(s.Mounts,
				mount{Source: img.cephConf, Target: "/etc/rbd-dr-app/ceph.conf", ReadOnly: true, File: true},
				mount{Source: keyring, Target: "/etc/rbd-dr-app/keyring", ReadOnly: true, File: true})
		}
		argv = append([]string{"/usr/local/bin/rbd-dr-app", "app", "--conf", "/etc/rbd-dr-app/ceph.conf", "--keyring", "/etc/rbd-dr-app/keyring",
			"--id", id, "--ready", "/run/rbd-dr-app/ready", "--writer", r.a.node + "/" + r.pod.Namespace + "/" + r.pod.Name}, images...)
		if r.pod.Spec.RestartPolicy != corev1.RestartPolicyAlways {
			// A Job's pod (a CronJob's run): write, then finish.
			argv = slices.Insert(argv, 2, "--once") // after "rbd-dr-app app"
		}
		// The app's own image and user do not exist here: it runs on the
		// Ceph root, whose librbd is the lab's release.
		s.UID, s.GID, s.FSGroup, s.ReadOnlyRoot = nil, nil, nil, false
		s.Image = img.cephRoot
	}
	s.Argv = argv
	return s, ready, nil
}

// env is the container's environment as the kubelet builds it.
func (r *podRunner) env(ctx context.Context, c corev1.Container) ([]string, error) {
	host, port, err := net.SplitHostPort(r.a.api)
	if err != nil {
		return nil, err
	}
	out := []string{"PATH=" + defaultPath, "HOSTNAME=" + r.pod.Name, "HOME=/root",
		// No kube-proxy here: pods reach the API server at its own address.
		"KUBERNETES_SERVICE_HOST=" + host, "KUBERNETES_SERVICE_PORT=" + port}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := r.a.client.CoreV1().ConfigMaps(r.pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			for k, v := range cm.Data {
				out = append(out, from.Prefix+k+"="+v)
			}
		case from.SecretRef != nil:
			s, err := r.a.client.CoreV1().Secrets(r.pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			for k, v := range s.Data {
				out = append(out, from.Prefix+k+"="+string(v))
			}
		}
	}
	for _, e := range c.Env {
		v := e.Value
		if f := e.ValueFrom; f != nil {
			switch {
			case f.SecretKeyRef != nil:
				s, err := r.a.client.CoreV1().Secrets(r.pod.Namespace).Get(ctx, f.SecretKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
				b, ok := s.Data[f.SecretKeyRef.Key]
				if !ok {
					return nil, fmt.Errorf("env %s: secret %s has no key %s", e.Name, f.SecretKeyRef.Name, f.SecretKeyRef.Key)
				}
				v = string(b)
			case f.ConfigMapKeyRef != nil:
				cm, err := r.a.client.CoreV1().ConfigMaps(r.pod.Namespace).Get(ctx, f.ConfigMapKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
				v = cm.Data[f.ConfigMapKeyRef.Key]
			case f.FieldRef != nil:
				if v, err = r.field(f.FieldRef.FieldPath); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("env %s: unsupported valueFrom", e.Name)
			}
		}
		out = setEnv(out, e.Name, expand(v, out))
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// expand resolves $(VAR) references to earlier variables, as the kubelet
// does; $$ is a literal $, and unknown references stay as they are.
func expand(v string, env []string) string {
	lookup := func(k string) (string, bool) {
		for _, e := range env {
			if val, ok := strings.CutPrefix(e, k+"="); ok {
				return val, true
			}
		}
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '$' && i+1 < len(v) {
			if v[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			if v[i+1] == '(' {
				if end := strings.IndexByte(v[i+2:], ')'); end >= 0 {
					if val, ok := lookup(v[i+2 : i+2+end]); ok {
						b.WriteString(val)
						i += 2 + end
						continue
					}
				}
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
