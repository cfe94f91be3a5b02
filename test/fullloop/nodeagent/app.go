package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// marker is what the app stand-in keeps in the first block of each volume:
// who wrote last, and what it found there before.
type marker struct {
	Seq    int       `json:"seq"`
	Writer string    `json:"writer"` // node/namespace/pod
	Time   time.Time `json:"time"`
	Prev   *marker   `json:"prev,omitempty"`
}

// librbdScript reads or writes the marker block through librbd (python3-rbd,
// part of Debian's ceph-common). argv: conf keyring id pool namespace image
// [rw]; namespace is "" for the pool's default one.
// Without rw it prints the block and ends. With rw it prints the block (one
// line), reads the next block from stdin (one line), writes and flushes it,
// prints "ok" and keeps the image open until stdin closes, as a running app
// holds its volume: one connection per volume, read and write.
const librbdScript = `
import signal, sys, rados, rbd
# The pod's SIGTERM goes to the whole process group: the image is closed
# (its lock released) when the app closes stdin, as ceph-csi unmaps a
# volume after the container stopped.
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
conf, keyring, cid, pool, namespace, image = sys.argv[1:7]
cluster = rados.Rados(conffile=conf, rados_id=cid, conf={'keyring': keyring})
cluster.connect(timeout=30)
ioctx = cluster.open_ioctx(pool)
ioctx.set_namespace(namespace)
if len(sys.argv) > 7:
    img = rbd.Image(ioctx, image)
    print(img.read(0, 4096).rstrip(b'\0').decode(), flush=True)
    data = sys.stdin.readline().rstrip('\n').encode().ljust(4096, b'\0')
    img.write(data, 0)
    img.flush()
    print('ok', flush=True)
    sys.stdin.read()
else:
    img = rbd.Image(ioctx, image, read_only=True)
    sys.stdout.write(img.read(0, 4096).rstrip(b'\0').decode())
img.close(); ioctx.close(); cluster.shutdown()
`

// holderGrace is how long the app waits, once stopped, for librbd to close
// its images (and release their locks) before it kills the holders.
const holderGrace = 20 * time.Second

// debianPython is Debian's python3, the one python3-rbd belongs to (a
// python3 earlier on PATH, e.g. pyenv's, has no rados module). In a
// container it is the Ceph image's (the agent's --ceph-root).
const debianPython = "/usr/bin/python3"

type cephFlags struct{ conf, keyring, id, python string }

func (c *cephFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.conf, "conf", "", "Ceph conf")
	fs.StringVar(&c.keyring, "keyring", "", "keyring")
	fs.StringVar(&c.id, "id", "admin", "CephX id")
	fs.StringVar(&c.python, "python", debianPython, "the python3 with the rados and rbd modules of the lab's Ceph release")
}

// librbd runs librbdScript on the image spec (pool/image or
// pool/namespace/image), with extra arguments after it.
func (c cephFlags) librbd(spec string, extra ...string) (*exec.Cmd, error) {
	img, err := rbd.ParseImage(spec)
	if err != nil {
		return nil, err
	}
	args := []string{"-c", librbdScript, c.conf, c.keyring, c.id, img.Pool, img.Namespace, img.Name}
	return exec.Command(c.python, append(args, extra...)...), nil
}

// readMarker is the marker on the image (nil when nothing was written yet).
func readMarker(c cephFlags, spec string) (*marker, error) {
	cmd, err := c.librbd(spec)
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("reading %s through librbd: %w: %s", spec, err, strings.TrimSpace(stderr.String()))
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, nil
	}
	var m marker
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("%s: the first block is not a marker: %w", spec, err)
	}
	return &m, nil
}

// markerMain prints the marker of each image as JSON, one per line.
func markerMain(args []string) error {
	fs := flag.NewFlagSet("marker", flag.ContinueOnError)
	var c cephFlags
	c.add(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, spec := range fs.Args() {
		m, err := readMarker(c, spec)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(map[string]any{"image": spec, "marker": m})
		fmt.Println(string(b))
	}
	return nil
}

// appMain is the app stand-in: for each RBD volume of its pod it reads the
// marker the previous writer left, writes the next one (a write to a
// non-primary image fails, and so does the container), keeps the images open
// like a running app, signals ready, and runs until stopped (with --once, a
// batch run, it exits once every marker is written).
func appMain(args []string) error {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	var c cephFlags
	c.add(fs)
	ready := fs.String("ready", "", "file to create once every volume is written")
	writer := fs.String("writer", "", "who writes (node/namespace/pod)")
	once := fs.Bool("once", false, "write the markers, close the volumes and exit (a batch run)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	type holder struct {
		cmd   *exec.Cmd
		stdin io.Closer
	}
	var holders []holder
	defer func() {
		// Closing stdin makes each holder close its image, which releases
		// the image's exclusive lock, as ceph-csi's unmap does when a pod
		// stops; one that has not finished in time is killed (a crash: the
		// lock stays behind, with a holder that is gone).
		for _, h := range holders {
			_ = h.stdin.Close()
		}
		deadline := time.Now().Add(holderGrace)
		for _, h := range holders {
			done := make(chan struct{})
			go func() { _ = h.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(time.Until(deadline)):
				_ = h.cmd.Process.Kill()
				<-done
			}
		}
	}()
	for _, spec := range fs.Args() {
		h, err := c.librbd(spec, "rw")
		if err != nil {
			return err
		}
		h.Stderr = os.Stderr
		// Dies with the app: a killed app must not leave the image open.
		h.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stdin, err := h.StdinPipe()
		if err != nil {
			return err
		}
		out, err := h.StdoutPipe()
		if err != nil {
			return err
		}
		if err := h.Start(); err != nil {
			return err
		}
		holders = append(holders, holder{h, stdin})
		lines := bufio.NewReader(out)
		first, err := lines.ReadString('\n')
		if err != nil {
			return fmt.Errorf("%s: reading the marker through librbd failed: %w", spec, err)
		}
		var prev *marker
		if text := strings.TrimSpace(first); text != "" {
			prev = &marker{}
			if err := json.Unmarshal([]byte(text), prev); err != nil {
				return fmt.Errorf("%s: the first block is not a marker: %w", spec, err)
			}
		}
		next := marker{Seq: 1, Writer: *writer, Time: time.Now().UTC(), Prev: prev}
		if prev != nil {
			next.Seq = prev.Seq + 1
			prev.Prev = nil
			fmt.Printf("%s: previous marker seq %d by %s at %s\n", spec, prev.Seq, prev.Writer, prev.Time.Format(time.RFC3339))
		} else {
			fmt.Printf("%s: no marker yet (a new volume)\n", spec)
		}
		b, _ := json.Marshal(next)
		if _, err := fmt.Fprintf(stdin, "%s\n", b); err != nil {
			return err
		}
		if ok, _ := lines.ReadString('\n'); ok != "ok\n" {
			return fmt.Errorf("%s: writing the marker through librbd failed (is the image primary here?)", spec)
		}
		fmt.Printf("%s: wrote marker seq %d as %s\n", spec, next.Seq, *writer)
	}
	if *ready != "" {
		if err := os.WriteFile(*ready, nil, 0o644); err != nil {
			return err
		}
	}
	if *once {
		fmt.Println("done: closing the volumes")
		return nil
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	fmt.Println("stopping: closing the volumes")
	return nil
}
