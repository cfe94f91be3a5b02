package rbd

import (
	"fmt"
	"regexp"
	"strings"
)

// nameRE is the subset of Ceph pool and image names argocd-rbd-dr accepts: a
// name can never be read as a flag, a pool/image separator or a snapshot.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName says whether s is a pool or image name argocd-rbd-dr accepts:
// letters, digits, '.', '_' and '-', starting with a letter or digit, at most
// 128 characters. rbd-dr.yaml, the hook command line and the rbd calls all
// check names with it.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Image names one RBD image: in a pool, and in one of the pool's RADOS
// namespaces when Namespace is set (a team's own part of a shared pool).
type Image struct{ Pool, Namespace, Name string }

// String is the pool/image or pool/namespace/image form that rbd and the
// hook command line use.
func (i Image) String() string {
	if i.Namespace != "" {
		return i.Pool + "/" + i.Namespace + "/" + i.Name
	}
	return i.Pool + "/" + i.Name
}

// Place is where the image lives: its pool, or pool/namespace, as rbd's
// pool-level commands (mirror pool status) take it.
func (i Image) Place() string { return Place(i.Pool, i.Namespace) }

// Place is pool, or pool/namespace when namespace is set.
func Place(pool, namespace string) string {
	if namespace != "" {
		return pool + "/" + namespace
	}
	return pool
}

// CapScope is the part of a CephX cap that reaches the image's place:
// "pool=P", or "pool=P namespace=N".
func (i Image) CapScope() string {
	if i.Namespace != "" {
		return "pool=" + i.Pool + " namespace=" + i.Namespace
	}
	return "pool=" + i.Pool
}

// ScheduleScope is the arguments of `rbd mirror snapshot schedule` that name
// the image's place: --pool P, and --namespace N in a RADOS namespace.
func (i Image) ScheduleScope() string {
	if i.Namespace != "" {
		return "--pool " + i.Pool + " --namespace " + i.Namespace
	}
	return "--pool " + i.Pool
}

// ParseImage reads pool/image or pool/namespace/image, all valid names.
func ParseImage(spec string) (Image, error) {
	parts := strings.Split(spec, "/")
	ok := len(parts) == 2 || len(parts) == 3
	for _, p := range parts {
		ok = ok && ValidName(p)
	}
	if !ok {
		return Image{}, fmt.Errorf("%q is not pool/image or pool/namespace/image with valid Ceph names (letters, digits, '.', '_' and '-', starting with a letter or digit)", spec)
	}
	if len(parts) == 3 {
		return Image{Pool: parts[0], Namespace: parts[1], Name: parts[2]}, nil
	}
	return Image{Pool: parts[0], Name: parts[1]}, nil
}

// ParsePlace reads pool or pool/namespace.
func ParsePlace(s string) (pool, namespace string, err error) {
	pool, namespace, hasNS := strings.Cut(s, "/")
	if !ValidName(pool) || (hasNS && !ValidName(namespace)) {
		return "", "", fmt.Errorf("%q is not pool or pool/namespace with valid Ceph names", s)
	}
	return pool, namespace, nil
}
