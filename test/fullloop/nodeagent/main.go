// Command nodeagent is the full-loop suite's one stand-in: a small kubelet.
// Kubelet 1.37 refuses the cgroup v1 hosts the suite runs on, so this agent
// registers a Node, keeps its Lease, runs the pods the scheduler binds to it
// as host processes, each container in its own mount namespace on a
// copy-on-write view of its image's folder (overlayfs over / or the Ceph
// root) with its volumes (Secrets, ConfigMaps, projected ServiceAccount
// tokens from TokenRequest, downward API, emptyDirs) mounted, honours command, args, env, workingDir,
// runAsUser, readOnlyRootFilesystem and restartPolicy, and reports pod status
// through the real API with the node's own identity (Node authorizer).
//
// Container images map to host programs:
//   - the project's image: the built argocd-rbd-dr on PATH;
//   - Rook's Ceph image: the rbd and ceph of --ceph-root, a Debian root
//     with the lab's Ceph release, or the host's (the Jobs pass monitors,
//     user and the key file from the mounted Secret themselves);
//   - any other image (the app): this binary as "app", which opens each
//     RBD-backed volume of the pod on the site's Ceph cluster with librbd,
//     checks the marker the previous writer left and writes the next one;
//     it runs on the Ceph root too, with that release's librbd, and finds a
//     PV's RADOS namespace through ceph-csi's cluster config (--csi-config).
//
// Usage: nodeagent agent --kubeconfig K --node N --dir D ... (see flags);
// the suite starts one per site.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		exit(fmt.Errorf("usage: nodeagent agent|container|app|marker ..."))
	}
	var err error
	switch os.Args[1] {
	case "agent":
		err = agentMain(os.Args[2:])
	case "container":
		err = containerMain(os.Args[2:])
	case "app":
		err = appMain(os.Args[2:])
	case "marker":
		err = markerMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	exit(err)
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
