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

// Image names one RBD image.
type Image struct{ Pool, Name string }

// String is the pool/image form rbd and the hook command line use.
func (i Image) String() string { return i.Pool + "/" + i.Name }

// ParseImage reads pool/image, both valid names.
func ParseImage(spec string) (Image, error) {
	pool, name, _ := strings.Cut(spec, "/")
	if !ValidName(pool) || !ValidName(name) {
		return Image{}, fmt.Errorf("%q is not pool/image with valid Ceph names (letters, digits, '.', '_' and '-', starting with a letter or digit)", spec)
	}
	return Image{Pool: pool, Name: name}, nil
}
