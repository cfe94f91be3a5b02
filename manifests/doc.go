// Package manifests holds the kustomize install of argocd-rbd-dr: a Component
// that adds the rbd-dr sidecar and its plugin ConfigMap to Argo CD's
// argocd-repo-server and the Application health check to argocd-cm, and, in
// rbac/, the optional Role for the Ceph hook Jobs. The Go here is the test
// that builds them on top of Argo CD's own install manifest; README.md says
// how to use them.
package manifests
