package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"gopkg.in/yaml.v3"

	pb "ferrygodriver/artifact"
)

// stagingDir sits inside each root so that a staged object and its final
// place share a filesystem, which is what makes rename atomic. Keys may not
// start with it, so it never shows up as an artifact.
const stagingDir = ".staging"

// maxConfiguration bounds the work a hostile configuration can cause; a real
// one is a line or two.
const maxConfiguration = 64 << 10

// callError is a failure the caller can act on, with the gRPC code it maps
// to. Messages name keys and fields, never configuration values, because a
// configuration may carry secrets and messages reach workflow status.
type callError struct {
	code codes.Code
	msg  string
}

func (e *callError) Error() string { return e.msg }

func invalid(format string, args ...interface{}) error {
	return &callError{codes.InvalidArgument, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...interface{}) error {
	return &callError{codes.NotFound, fmt.Sprintf(format, args...)}
}

// codeOf is Internal for anything unclassified (I/O errors of the storage).
func codeOf(err error) codes.Code {
	var ce *callError
	if errors.As(err, &ce) {
		return ce.code
	}
	return codes.Internal
}

// shown quotes a user-supplied string for a message, cut short so a huge
// key cannot blow up an error that travels back in a gRPC trailer.
func shown(s string) string {
	if len(s) > 256 {
		s = s[:256] + "…"
	}
	return strconv.Quote(s)
}

// cause strips the storage path from an os error: the host layout of the
// driver is none of the caller's business, the key already says what failed.
func cause(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// config is the whole configuration. Root is a pointer so that a missing
// or null root is told apart from an empty one.
type config struct {
	Root *string `yaml:"root"`
}

// parseRoot reads the configuration `root: /abs/dir` (YAML, or JSON, which
// is YAML) and returns the root with symlinks resolved, creating it if need
// be. Resolving once here lets every later containment check compare plain
// string prefixes.
func parseRoot(configuration string) (string, error) {
	switch {
	case len(configuration) > maxConfiguration:
		return "", invalid("invalid configuration: longer than %d bytes", maxConfiguration)
	case strings.TrimSpace(configuration) == "":
		return "", invalid("invalid configuration: it is empty; expected `root: /an/absolute/path`")
	}
	dec := yaml.NewDecoder(strings.NewReader(configuration))
	dec.KnownFields(true)
	var c config
	switch err := dec.Decode(&c); {
	case err == io.EOF:
		return "", invalid("invalid configuration: it holds only comments; expected `root: /an/absolute/path`")
	case err != nil:
		return "", configError(err)
	}
	// A second document could name another root; picking one would be a guess.
	if dec.Decode(new(yaml.Node)) != io.EOF {
		return "", invalid("invalid configuration: it holds more than one YAML document")
	}
	if c.Root == nil {
		return "", invalid("invalid configuration: `root` is missing or null; it must be an absolute path")
	}
	if !filepath.IsAbs(*c.Root) {
		return "", invalid("invalid configuration: `root` must be an absolute path")
	}
	clean := filepath.Clean(*c.Root)
	if err := os.MkdirAll(clean, 0o777); err != nil {
		return "", fmt.Errorf("creating the storage root: %w", cause(err))
	}
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return "", fmt.Errorf("resolving the storage root: %w", cause(err))
	}
	return real, nil
}

var (
	yamlLine     = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	unknownField = regexp.MustCompile(`(?s)^line (\d+): field (.*) not found in type `)
	repeated     = regexp.MustCompile(`^line \d+: field .* already set in type `)
)

// configError rewrites a yaml.v3 error, keeping only the line and, for an
// unknown field, its name: yaml's own text can quote the configuration (the
// scalar in a type error, an anchor, a tagged value), and a configuration may
// carry secrets. Only a known field can be repeated, so that one is `root`.
func configError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			return invalid("invalid configuration: line %s is not valid YAML or JSON", m[1])
		}
		return invalid("invalid configuration: not valid YAML or JSON")
	}
	first := te.Errors[0]
	if m := unknownField.FindStringSubmatch(first); m != nil {
		return invalid("invalid configuration: line %s: unknown field %s (the only field is `root`, an absolute path)", m[1], shown(m[2]))
	}
	where := ""
	if m := yamlLine.FindStringSubmatch(first); m != nil {
		where = "line " + m[1] + ": "
	}
	switch {
	case repeated.MatchString(first):
		return invalid("invalid configuration: %s`root` is repeated", where)
	case strings.HasSuffix(first, " into string"):
		// A key that is not a string ends up here too, hence no field name.
		return invalid("invalid configuration: %sexpected a string; `root` is an absolute path", where)
	}
	return invalid("invalid configuration: %sexpected a mapping such as `root: /an/absolute/path`", where)
}

// location is where an artifact's key lives under its root.
type location struct {
	root string
	path string
	key  string // without trailing slashes, as listings spell it
	raw  string // as sent: a trailing slash makes Delete recursive
}

func (l location) staging() string { return filepath.Join(l.root, stagingDir) }

// locate validates the artifact's configuration and key. Keys are refused
// rather than normalised when they could mean something else on disk (`..`,
// empty segments) because a silently rewritten key would store an object
// where no listing of the intended key finds it.
func locate(art *pb.Artifact) (location, error) {
	if art == nil {
		return location{}, invalid("the request carries no artifact")
	}
	if art.Plugin == nil {
		return location{}, invalid("artifact %s has no plugin block", shown(art.Name))
	}
	root, err := parseRoot(art.Plugin.Configuration)
	if err != nil {
		return location{}, err
	}
	raw := art.Plugin.Key
	key := strings.TrimRight(raw, "/")
	switch {
	case raw == "":
		// It would name the whole root; Argo never means that, a template
		// parameter that rendered empty does.
		return location{}, invalid("an empty key names no object")
	case key == "" || strings.HasPrefix(key, "/"):
		return location{}, invalid("key %s is absolute; keys are relative to the root", shown(raw))
	case len(key) > 1024:
		return location{}, invalid("key is %d bytes long, over the 1024-byte limit", len(key))
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return location{}, invalid("key %s contains control characters", shown(raw))
		}
	}
	segments := strings.Split(key, "/")
	for _, s := range segments {
		if s == "" || s == "." || s == ".." {
			return location{}, invalid("key %s has an empty, `.` or `..` segment", shown(raw))
		}
	}
	if segments[0] == stagingDir {
		return location{}, invalid("keys may not start with %s, the driver's staging area", stagingDir)
	}
	loc := location{root: root, path: filepath.Join(root, filepath.FromSlash(key)), key: key, raw: raw}
	// A symlink planted in the root must not carry reads or writes out of
	// it: resolve the deepest part of the path that exists.
	probe := loc.path
	for probe != root {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		probe = filepath.Dir(probe)
	}
	real, err := filepath.EvalSymlinks(probe)
	if err != nil {
		return location{}, fmt.Errorf("resolving key %s: %w", shown(key), cause(err))
	}
	if !within(root, real) {
		return location{}, invalid("key %s resolves outside the root", shown(key))
	}
	return loc, nil
}

func within(dir, path string) bool {
	return dir == "/" || path == dir || strings.HasPrefix(path, dir+"/")
}

// scratch tracks staged files that are not in place yet, so a shutdown that
// cuts calls short can remove them instead of leaving orphans behind.
type scratch struct {
	mu    sync.Mutex
	paths map[string]struct{}
}

// make reserves a fresh path in dir; done removes whatever is left at it
// (nothing once it was renamed into place).
func (s *scratch) make(dir, prefix, suffix string) (path string, done func()) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // the kernel's random source does not fail on Linux
	}
	path = filepath.Join(dir, prefix+hex.EncodeToString(b[:])+suffix)
	s.mu.Lock()
	s.paths[path] = struct{}{}
	s.mu.Unlock()
	return path, func() {
		_ = os.RemoveAll(path)
		s.mu.Lock()
		delete(s.paths, path)
		s.mu.Unlock()
	}
}

func (s *scratch) removeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.paths {
		_ = os.RemoveAll(p)
	}
}

// aside is a name next to path's future home under which the old contents
// wait while the new ones move in; rename keeps both steps atomic.
func aside(dir string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(dir, "."+hex.EncodeToString(b[:])+".old")
}

// replace moves the staged tmp to dst. A file over a file is one atomic
// rename. When either side is a directory, rename cannot overwrite, so the
// old one first moves aside (atomically) and is deleted after: readers see
// the old version or the new one, never a half-deleted tree. The last
// writer wins, as on Argo's object stores.
func replace(tmp, dst, asideDir string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return err
	}
	tmpInfo, err := os.Lstat(tmp)
	if err != nil {
		return err
	}
	old := ""
	if dstInfo, err := os.Lstat(dst); err == nil && (dstInfo.IsDir() || tmpInfo.IsDir()) {
		old = aside(asideDir)
		if err := os.Rename(dst, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst)
		}
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// copyFile writes src to a new file dst. io.Copy between two *os.File uses
// copy_file_range, so large objects move without passing through memory.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies the regular files under src into dst and returns how many
// it copied. Symlinks to files inside src are followed; dangling ones,
// loops and links to directories are skipped; a link that leads outside
// src is refused, since following it would upload whatever it points at.
func copyTree(src, dst string) (int, error) {
	realSrc, err := filepath.EvalSymlinks(src)
	if err != nil {
		return 0, err
	}
	files := 0
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch mode := d.Type(); {
		case mode.IsDir():
			return os.MkdirAll(target, 0o777)
		case mode.IsRegular():
			files++
			return copyFile(p, target)
		case mode&fs.ModeSymlink != 0:
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil
			}
			if !within(realSrc, real) {
				return invalid("%s is a symlink out of the artifact directory", rel)
			}
			if info, err := os.Stat(real); err == nil && info.Mode().IsRegular() {
				files++
				return copyFile(real, target)
			}
			return nil
		default:
			log.Printf("skipping %s: a socket, FIFO or device is not an artifact", p)
			return nil
		}
	})
	return files, err
}

// stage copies the file or tree at src to tmp: whether src exists, and how
// many files it held (a directory without any is, to Argo's object stores,
// no artifact at all).
func stage(src, tmp string) (exists bool, files int, err error) {
	info, err := os.Stat(src)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, 0, nil
	case err != nil:
		return false, 0, err
	case info.Mode().IsRegular():
		return true, 1, copyFile(src, tmp)
	case info.IsDir():
		n, err := copyTree(src, tmp)
		return true, n, err
	}
	return true, 0, invalid("%s is neither a regular file nor a directory", src)
}

// errFound stops a walk at the first object (filepath.SkipAll is newer than
// Debian's Go).
var errFound = errors.New("found")

// listing is every object under loc.path as a full key. Entries that vanish
// mid-walk belong to a concurrent Delete or replace and are simply absent.
func listing(loc location, firstOnly bool) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(loc.path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(loc.root, p)
		if err != nil {
			return err
		}
		keys = append(keys, filepath.ToSlash(rel))
		if firstOnly {
			return errFound
		}
		return nil
	})
	if err == errFound {
		err = nil
	}
	return keys, err
}
