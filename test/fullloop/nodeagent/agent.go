package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rbd-dr/argocd-rbd-dr/internal/cephlab"
)

// agent is one node.
type agent struct {
	client kubernetes.Interface
	node   string
	dir    string
	self   string // this binary
	images imageMap
	csi    []cephlab.CSICluster // ceph-csi's cluster config: clusterID -> RADOS namespace
	api    string               // host:port pods reach the API server at (no kube-proxy here)

	readySince metav1.Time

	mu   sync.Mutex
	pods map[types.UID]*podRunner
}

func agentMain(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig with the node's identity (system:node:NAME in system:nodes)")
	a := &agent{pods: map[types.UID]*podRunner{}}
	fs.StringVar(&a.node, "node", "", "the Node's name")
	fs.StringVar(&a.dir, "dir", "", "folder for the pods' volumes, containers and logs")
	fs.StringVar(&a.api, "api", "", "host:port of the API server, as pods see it")
	fs.StringVar(&a.images.ours, "our-image", "", "the project's image")
	fs.StringVar(&a.images.ourBinary, "our-binary", "", "the built argocd-rbd-dr that the project's image runs")
	fs.StringVar(&a.images.ceph, "ceph-image", "", "Rook's Ceph image")
	fs.StringVar(&a.images.cephRoot, "ceph-root", "", "a Debian root folder with the lab's Ceph release (hack/ceph-root), the image of Rook's Ceph and of the app stand-in; empty: the host's /")
	fs.StringVar(&a.images.cephConf, "ceph-conf", "", "the site's Ceph conf (its monitors), for the app stand-in's volumes; the user is each volume's node-stage Secret's, as ceph-csi maps it")
	fs.IntVar(&a.images.podNice, "pod-nice", 0, "every container's CPU niceness (0-19): on one machine, the pods yield to the control planes, as on nodes of their own")
	csiConfig := fs.String("csi-config", "", "ceph-csi's cluster config (config.json), which maps each PV's clusterID to its RADOS namespace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *csiConfig != "" {
		var err error
		if a.csi, err = cephlab.ReadCSIConfig(*csiConfig); err != nil {
			return err
		}
	}
	if *kubeconfig == "" || a.node == "" || a.dir == "" || a.api == "" || a.images.ours == "" || a.images.ourBinary == "" || a.images.ceph == "" {
		return fmt.Errorf("agent needs --kubeconfig, --node, --dir, --api, --our-image, --our-binary and --ceph-image")
	}
	var err error
	if a.self, err = os.Executable(); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	// The kubelet's own client limits (KubeletConfiguration kubeAPIQPS and
	// kubeAPIBurst, 50 and 100 since Kubernetes 1.27); client-go's defaults
	// (5 and 10) throttled the bulk app's twenty pods starting at once.
	cfg.QPS, cfg.Burst = 50, 100
	if a.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a.readySince = metav1.Now()
	if err := a.register(ctx); err != nil {
		return err
	}
	go a.heartbeat(ctx)
	err = a.watchPods(ctx)
	a.stopAll()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// register creates the Node, Ready, with room for the pods of a test.
func (a *agent) register(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: a.node, Labels: map[string]string{
			"kubernetes.io/hostname": a.node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		}},
	}
	if _, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("registering node %s: %w", a.node, err)
	}
	return a.updateNodeStatus(ctx)
}

// updateNodeStatus patches the node's status only (a full update would
// carry a stale spec, and NodeRestriction refuses a node that seems to
// change its own taints).
func (a *agent) updateNodeStatus(ctx context.Context) error {
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	status := corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: a.node}},
		NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: "v1.37.2-rbd-dr-nodeagent", OperatingSystem: "linux", Architecture: "amd64", ContainerRuntimeVersion: "nodeagent://0"},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "NodeAgentReady",
			Message: "rbd-dr test node agent", LastHeartbeatTime: now, LastTransitionTime: a.readySince}},
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	_, err = a.client.CoreV1().Nodes().PatchStatus(ctx, a.node, patch)
	return err
}

// heartbeat renews the node's Lease and Ready condition, so the node
// lifecycle controller keeps it schedulable.
func (a *agent) heartbeat(ctx context.Context) {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	for {
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, a.node, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: a.node, Namespace: corev1.NamespaceNodeLease},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &a.node, LeaseDurationSeconds: ptr(int32(40)), RenewTime: &now},
			}, metav1.CreateOptions{})
		case err == nil:
			lease.Spec.RenewTime = &now
			_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		}
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "nodeagent: lease:", err)
		}
		if err := a.updateNodeStatus(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "nodeagent: node status:", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// watchPods starts a runner for each pod bound to this node and tells it
// when the pod is being deleted.
func (a *agent) watchPods(ctx context.Context) error {
	sel := fields.OneTermEqualSelector("spec.nodeName", a.node).String()
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return a.client.CoreV1().Pods("").List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return a.client.CoreV1().Pods("").Watch(ctx, o)
		},
	}
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.Pod{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { a.seen(ctx, obj.(*corev1.Pod)) },
			UpdateFunc: func(_, obj any) { a.seen(ctx, obj.(*corev1.Pod)) },
			DeleteFunc: func(obj any) {
				if p, ok := obj.(*corev1.Pod); ok {
					a.gone(p.UID)
				}
			},
		},
	})
	informer.Run(ctx.Done())
	return ctx.Err()
}

func (a *agent) seen(ctx context.Context, pod *corev1.Pod) {
	a.mu.Lock()
	r, ok := a.pods[pod.UID]
	if !ok {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			a.mu.Unlock()
			if pod.DeletionTimestamp != nil {
				a.forget(ctx, pod)
			}
			return
		}
		r = newPodRunner(a, pod)
		a.pods[pod.UID] = r
		a.mu.Unlock()
		go r.run(ctx)
		return
	}
	a.mu.Unlock()
	if pod.DeletionTimestamp != nil {
		r.terminate(pod)
	}
}

// forget finishes the deletion of a pod that runs nothing here.
func (a *agent) forget(ctx context.Context, pod *corev1.Pod) {
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0)), Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		fmt.Fprintln(os.Stderr, "nodeagent: deleting pod", pod.Namespace+"/"+pod.Name+":", err)
	}
}

func (a *agent) gone(uid types.UID) {
	a.mu.Lock()
	r, ok := a.pods[uid]
	delete(a.pods, uid)
	a.mu.Unlock()
	if ok {
		r.kill()
	}
}

func (a *agent) stopAll() {
	a.mu.Lock()
	rs := make([]*podRunner, 0, len(a.pods))
	for _, r := range a.pods {
		rs = append(rs, r)
	}
	a.mu.Unlock()
	for _, r := range rs {
		r.kill()
	}
}

func ptr[T any](v T) *T { return &v }
