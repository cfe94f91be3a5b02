// Command argocd-rbd-dr is the Argo CD Config Management Plugin that renders
// an app's site with its RBD failover hooks, and the hook steps themselves.
package main

import (
	"io"
	"os"

	"k8s.io/client-go/dynamic"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "v0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], system{getenv: os.Getenv, getwd: os.Getwd, stdout: os.Stdout, stderr: os.Stderr, shortLived: shortLived}))
}

// system is what a command may touch, so tests can run it in-process.
type system struct {
	getenv func(string) string
	getwd  func() (string, error)
	stdout io.Writer
	stderr io.Writer
	// shortLived tunes the process for a one-shot generate; tests leave it
	// nil, since it changes the whole process.
	shortLived func()
	// kube, when set, is the API the adopt command reads (tests); nil
	// connects with the kubeconfig.
	kube dynamic.Interface
}
