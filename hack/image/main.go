// Command image builds the argocd-rbd-dr container image without a Docker
// engine: one layer holding the static binary, the plugin's plugin.yaml and the
// few directories the sidecar and the hook Jobs need, written as a
// docker-loadable tarball (`docker load -i`, `crane push`).
//
// The image is reproducible: every file has the same owner, mode and mtime
// (SOURCE_DATE_EPOCH, else the Unix epoch) on every run, so the same binary
// and plugin.yaml give the same digest. `make image` runs it after `make build`;
// the Dockerfile at the repository root builds the same file tree with Docker.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's layout; the Dockerfile and plugin/plugin.yaml's command follow it.
const (
	binaryPath  = "/usr/local/bin/argocd-rbd-dr"
	pluginPath  = "/home/argocd/cmp-server/config/plugin.yaml"
	homeDir     = "/home/argocd"
	user        = "999:999" // Argo CD's argocd user: the sidecar must run as it
	uid, gid    = 999, 999
	defaultRepo = "ghcr.io/rbd-dr/argocd-rbd-dr"
	sourceURL   = "https://github.com/rbd-dr/argocd-rbd-dr"
)

// passwd and group name the two users the image knows, as distroless-static
// does, so that nothing looking up uid 999 or $HOME finds nothing.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\nargocd:x:999:999:argocd:/home/argocd:/sbin/nologin\n"
	group  = "root:x:0:\nargocd:x:999:\n"
)

type options struct {
	Binary  string // the static argocd-rbd-dr binary (make build)
	Plugin  string // plugin/plugin.yaml
	Out     string // the tarball to write
	Tag     string // the reference recorded in the tarball; default defaultRepo:<Version>
	Version string // the version label and default tag
	Arch    string // GOARCH of the binary; default runtime.GOARCH
	Epoch   int64  // every timestamp in the image, seconds since 1970
}

// result is what a build reports.
type result struct {
	Tag    name.Tag
	Digest v1.Hash // the manifest digest, as a registry shows it after a push
	Config v1.Hash // the config digest: the image ID `docker load` shows
}

func main() {
	epoch, err := sourceDateEpoch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(2)
	}
	o := options{Epoch: epoch}
	flag.StringVar(&o.Binary, "binary", "bin/argocd-rbd-dr", "the static argocd-rbd-dr binary (make build)")
	flag.StringVar(&o.Plugin, "plugin", "plugin/plugin.yaml", "the ConfigManagementPlugin file")
	flag.StringVar(&o.Out, "out", "bin/argocd-rbd-dr-image.tar", "where to write the docker-loadable image tarball")
	flag.StringVar(&o.Tag, "tag", "", "the image reference recorded in the tarball (default "+defaultRepo+":<version>)")
	flag.StringVar(&o.Version, "version", "v0.1.0-dev", "the version: the org.opencontainers.image.version label and the default tag")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "the binary's GOARCH, recorded as the image's architecture")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "image: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	res, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s\n  tag:    %s\n  digest: %s\n  id:     %s\n", o.Out, res.Tag, res.Digest, res.Config)
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (reproducible-builds.org); unset is 0.
func sourceDateEpoch() (int64, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative number of seconds", s)
	}
	return n, nil
}

var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// defaultTag turns a version (git describe output) into a valid tag.
func defaultTag(version string) string {
	t := badTagChars.ReplaceAllString(version, "-")
	if t == "" || t[0] == '.' || t[0] == '-' {
		t = "v" + t
	}
	if len(t) > 128 {
		t = t[:128]
	}
	return defaultRepo + ":" + t
}

// build writes the image tarball o.Out and reports its tag and digests.
func build(o options) (result, error) {
	var res result
	if o.Binary == "" || o.Plugin == "" || o.Out == "" {
		return res, errors.New("--binary, --plugin and --out are required")
	}
	if o.Version == "" {
		return res, errors.New("--version is empty")
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Tag == "" {
		o.Tag = defaultTag(o.Version)
	}
	tag, err := name.NewTag(o.Tag, name.StrictValidation)
	if err != nil {
		return res, fmt.Errorf("--tag %q: %w", o.Tag, err)
	}
	res.Tag = tag

	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return res, err
	}
	if err := checkStatic(o.Binary, bin, o.Arch); err != nil {
		return res, err
	}
	plugin, err := os.ReadFile(o.Plugin)
	if err != nil {
		return res, err
	}
	mtime := time.Unix(o.Epoch, 0).UTC()

	layerTar, err := rootfs(bin, plugin, mtime)
	if err != nil {
		return res, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return res, err
	}

	cfg, err := empty.Image.ConfigFile()
	if err != nil {
		return res, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: mtime}
	cfg.OS = "linux"
	cfg.Architecture = o.Arch
	cfg.Config = v1.Config{
		User:       user,
		Entrypoint: []string{binaryPath},
		WorkingDir: homeDir,
		Env:        []string{"PATH=/usr/local/bin", "HOME=" + homeDir},
		Labels: map[string]string{
			"org.opencontainers.image.source":  sourceURL,
			"org.opencontainers.image.version": o.Version,
			"org.opencontainers.image.title":   "argocd-rbd-dr",
		},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return res, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: mtime},
			CreatedBy: "hack/image: " + binaryPath + ", " + pluginPath + ", /tmp, /etc/passwd",
			Comment:   "argocd-rbd-dr " + o.Version,
		},
	})
	if err != nil {
		return res, err
	}

	if res.Digest, err = img.Digest(); err != nil {
		return res, err
	}
	if res.Config, err = img.ConfigName(); err != nil {
		return res, err
	}
	// Write next to the target and rename, so that a failed build leaves no
	// half-written tarball behind for `docker load`.
	tmp := o.Out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return res, err
	}
	if err := os.Rename(tmp, o.Out); err != nil {
		os.Remove(tmp)
		return res, err
	}
	return res, nil
}

// goarchMachine maps the GOARCH values we might ship to their ELF machine.
var goarchMachine = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"386":     elf.EM_386,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"riscv64": elf.EM_RISCV,
}

// checkStatic refuses a binary the image could not run: not a Linux ELF
// executable for arch, or one that needs a dynamic loader (the image has no libc).
func checkStatic(path string, bin []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("%s: not an ELF binary (build it with make build): %w", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: ELF type %v, want an executable", path, f.Type)
	}
	if want, ok := goarchMachine[arch]; !ok {
		return fmt.Errorf("--arch %q: not one of the architectures this builder knows", arch)
	} else if f.Machine != want {
		return fmt.Errorf("%s: built for %v, but the image is for %s (%v)", path, f.Machine, arch, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked (has an ELF interpreter); build it with CGO_ENABLED=0 (make build)", path)
		}
	}
	return nil
}

type entry struct {
	name     string // without the leading slash; directories end in /
	mode     int64
	uid, gid int
	body     []byte
}

// rootfs is the layer: a tar of the image's whole file tree, sorted by name,
// with fixed owners, modes and times.
func rootfs(bin, plugin []byte, mtime time.Time) ([]byte, error) {
	entries := []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "home/", mode: 0o755},
		// argocd's own: the cmp-server creates its socket and plugins dir here.
		{name: "home/argocd/", mode: 0o755, uid: uid, gid: gid},
		{name: "home/argocd/cmp-server/", mode: 0o755, uid: uid, gid: gid},
		// The plugin's config is root's: the sidecar reads it, never writes it.
		{name: "home/argocd/cmp-server/config/", mode: 0o755},
		{name: "home/argocd/cmp-server/config/plugin.yaml", mode: 0o644, body: plugin},
		{name: "tmp/", mode: 0o1777},
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: "usr/local/bin/", mode: 0o755},
		{name: "usr/local/bin/argocd-rbd-dr", mode: 0o755, body: bin},
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
