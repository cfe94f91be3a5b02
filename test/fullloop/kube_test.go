package fullloop

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// cluster is one real Kubernetes control plane on loopback: etcd (Debian's),
// kube-apiserver with its own certificates, RBAC and the Node authorizer,
// kube-controller-manager and kube-scheduler (built from k8s.io/kubernetes).
type cluster struct {
	name   string
	dir    string
	url    string // https://127.0.0.1:port
	ca     *ca
	admin  *rest.Config // system:masters
	client kubernetes.Interface
	procs  []*proc // etcd, apiserver, controller-manager, scheduler
}

// freePort is a loopback port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// kubeconfig writes a kubeconfig for a client certificate of this cluster.
func (c *cluster) kubeconfig(name, cn string, groups ...string) (string, error) {
	certFile, keyFile, err := c.ca.issue(c.dir, name, cn, groups)
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.name] = &clientcmdapi.Cluster{Server: c.url, CertificateAuthority: c.ca.file}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: c.name, AuthInfo: name}
	cfg.CurrentContext = name
	file := filepath.Join(c.dir, name+".kubeconfig")
	return file, clientcmd.WriteToFile(*cfg, file)
}

// startCluster brings up a control plane named name under dir, with the
// binaries in kubeBin, and waits until the API answers.
func startCluster(ctx context.Context, dir, name, kubeBin string) (*cluster, error) {
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &cluster{name: name, dir: dir}
	var err error
	if c.ca, err = newCA(dir, name); err != nil {
		return nil, err
	}
	etcdPort, err := freePort()
	if err != nil {
		return nil, err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	c.url = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	etcd, err := start(dir, "etcd", []string{"ETCD_UNSUPPORTED_ARCH="}, "etcd",
		"--name", name, "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-advertise-peer-urls", "http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-cluster", name+"=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--quota-backend-bytes", strconv.Itoa(1<<30), "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, etcd)

	serverCert, serverKey, err := c.ca.issue(dir, "apiserver", "kube-apiserver", nil, net.ParseIP("127.0.0.1"))
	if err != nil {
		return nil, err
	}
	saPub, saKey, err := writeSAKey(dir)
	if err != nil {
		return nil, err
	}
	api, err := start(dir, "kube-apiserver", nil, filepath.Join(kubeBin, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", strconv.Itoa(apiPort),
		"--tls-cert-file", serverCert, "--tls-private-key-file", serverKey, "--client-ca-file", c.ca.file,
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
		"--api-audiences", "https://kubernetes.default.svc",
		"--service-cluster-ip-range", "10.96.0.0/24",
		// No kubelets, no kube-proxy: nobody serves the default/kubernetes
		// Endpoints on these addresses.
		"--endpoint-reconciler-type", "none",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false", "--profiling=false",
		"--v", "1")
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, api)

	adminCfg, err := c.kubeconfig("admin", "admin", "system:masters")
	if err != nil {
		return nil, err
	}
	if c.admin, err = clientcmd.BuildConfigFromFlags("", adminCfg); err != nil {
		return nil, err
	}
	c.admin.QPS, c.admin.Burst = 100, 200
	if c.client, err = kubernetes.NewForConfig(c.admin); err != nil {
		return nil, err
	}
	if err := c.waitHealthy(ctx, api, etcd); err != nil {
		return nil, err
	}

	kcmCfg, err := c.kubeconfig("controller-manager", "system:kube-controller-manager")
	if err != nil {
		return nil, err
	}
	kcm, err := start(dir, "kube-controller-manager", nil, filepath.Join(kubeBin, "kube-controller-manager"),
		"--kubeconfig", kcmCfg, "--authentication-kubeconfig", kcmCfg, "--authorization-kubeconfig", kcmCfg,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--leader-elect=false", "--use-service-account-credentials",
		"--service-account-private-key-file", saKey, "--root-ca-file", c.ca.file,
		"--v", "1")
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, kcm)

	schedCfg, err := c.kubeconfig("scheduler", "system:kube-scheduler")
	if err != nil {
		return nil, err
	}
	sched, err := start(dir, "kube-scheduler", nil, filepath.Join(kubeBin, "kube-scheduler"),
		"--kubeconfig", schedCfg, "--authentication-kubeconfig", schedCfg, "--authorization-kubeconfig", schedCfg,
		"--bind-address", "127.0.0.1", "--secure-port", "0", "--leader-elect=false", "--v", "1")
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, sched)
	return c, nil
}

// waitHealthy waits for /readyz, failing early when a daemon dies.
func (c *cluster) waitHealthy(ctx context.Context, ps ...*proc) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, p := range ps {
			if err := p.exited(); err != nil {
				return false, err
			}
		}
		body, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
}

func (c *cluster) String() string { return fmt.Sprintf("%s (%s)", c.name, c.url) }
