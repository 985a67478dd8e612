// An Argo-style client of an artifact driver, written from
// proto/artifact.proto alone with grpc-go and its defaults (as Argo's
// executor and argo-server dial a plugin). It runs one scenario of every
// RPC against a driver's socket and prints one line per check, then
// "N passed, M failed".
//
// Built offline from Debian's golang-google-grpc-dev (testing/clients/check.py).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "ferryclient/artifact"
)

type scenario struct {
	c       pb.ArtifactServiceClient
	plugin  string
	config  string
	prefix  string
	dir     string
	payload []byte
	// What the driver's profile claims: without directories a tree's Save is
	// refused; without delete a Delete is, and the object stays.
	directories bool
	deletes     bool
}

// errSkip: the check does not apply to what the driver claims.
var errSkip = errors.New("does not apply to what the profile claims")

func (s *scenario) artifact(key string) *pb.Artifact {
	return &pb.Artifact{Name: filepath.Base(key), Plugin: &pb.PluginArtifact{Name: s.plugin, Configuration: s.config, Key: s.prefix + key}}
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 120*time.Second)
}

func (s *scenario) stream(key string) ([]byte, error) {
	c, cancel := ctx()
	defer cancel()
	st, err := s.c.OpenStream(c, &pb.OpenStreamRequest{Artifact: s.artifact(key)})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for {
		r, err := st.Recv()
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		if r.Error != "" {
			return nil, fmt.Errorf("error frame: %s", r.Error)
		}
		out.Write(r.Data)
		if r.IsEnd {
			return out.Bytes(), nil
		}
	}
}

func ok(success bool, msg string, err error) error {
	if err != nil {
		return err
	}
	if !success {
		return fmt.Errorf("success=false: %s", msg)
	}
	return nil
}

func (s *scenario) save(key, path string) error {
	c, cancel := ctx()
	defer cancel()
	r, err := s.c.Save(c, &pb.SaveArtifactRequest{Path: path, OutputArtifact: s.artifact(key)})
	if err != nil {
		return err
	}
	return ok(r.Success, r.Error, nil)
}

func (s *scenario) list(key string) ([]string, error) {
	c, cancel := ctx()
	defer cancel()
	r, err := s.c.ListObjects(c, &pb.ListObjectsRequest{Artifact: s.artifact(key)})
	if err != nil {
		return nil, err
	}
	if r.Error != "" {
		return nil, fmt.Errorf("%s", r.Error)
	}
	objects := append([]string{}, r.Objects...)
	sort.Strings(objects)
	return objects, nil
}

func (s *scenario) del(key string) error {
	c, cancel := ctx()
	defer cancel()
	r, err := s.c.Delete(c, &pb.DeleteArtifactRequest{Artifact: s.artifact(key)})
	if err != nil {
		return err
	}
	return ok(r.Success, r.Error, nil)
}

func (s *scenario) checks() []struct {
	name string
	run  func() error
} {
	file := filepath.Join(s.dir, "file.bin")
	streamed := true
	return []struct {
		name string
		run  func() error
	}{
		{"GetCapabilities answers (or is UNIMPLEMENTED)", func() error {
			c, cancel := ctx()
			defer cancel()
			r, err := s.c.GetCapabilities(c, &pb.GetCapabilitiesRequest{})
			if status.Code(err) == codes.Unimplemented {
				streamed = false
				return nil
			}
			if err != nil {
				return err
			}
			streamed = r.SupportsSaveStream
			return nil
		}},
		{"Save a file", func() error {
			if err := ioutil.WriteFile(file, s.payload, 0o644); err != nil {
				return err
			}
			return s.save("file.bin", file)
		}},
		{"Load it back byte for byte", func() error {
			dst := filepath.Join(s.dir, "loaded.bin")
			c, cancel := ctx()
			defer cancel()
			r, err := s.c.Load(c, &pb.LoadArtifactRequest{InputArtifact: s.artifact("file.bin"), Path: dst})
			if err := ok(r.GetSuccess(), r.GetError(), err); err != nil {
				return err
			}
			got, err := ioutil.ReadFile(dst)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, s.payload) {
				return fmt.Errorf("loaded %d bytes that differ from the %d saved", len(got), len(s.payload))
			}
			return nil
		}},
		{"OpenStream it byte for byte", func() error {
			got, err := s.stream("file.bin")
			if err != nil {
				return err
			}
			if !bytes.Equal(got, s.payload) {
				return fmt.Errorf("streamed %d bytes that differ from the %d saved", len(got), len(s.payload))
			}
			return nil
		}},
		{"SaveStream in chunks, as argo-server uploads", func() error {
			if !streamed {
				return nil
			}
			c, cancel := ctx()
			defer cancel()
			st, err := s.c.SaveStream(c)
			if err != nil {
				return err
			}
			if err := st.Send(&pb.SaveStreamArtifactRequest{OutputArtifact: s.artifact("streamed.bin")}); err != nil {
				return err
			}
			for i := 0; i < len(s.payload); i += 1 << 20 {
				end := i + 1<<20
				if end > len(s.payload) {
					end = len(s.payload)
				}
				if err := st.Send(&pb.SaveStreamArtifactRequest{Chunk: s.payload[i:end]}); err != nil {
					return err
				}
			}
			r, err := st.CloseAndRecv()
			if err := ok(r.GetSuccess(), r.GetError(), err); err != nil {
				return err
			}
			got, err := s.stream("streamed.bin")
			if err != nil {
				return err
			}
			if !bytes.Equal(got, s.payload) {
				return fmt.Errorf("streamed back %d bytes that differ", len(got))
			}
			return nil
		}},
		{"Save a directory: refused by a driver without directories", func() error {
			if s.directories {
				return errSkip
			}
			tree := filepath.Join(s.dir, "tree")
			os.MkdirAll(tree, 0o755)
			ioutil.WriteFile(filepath.Join(tree, "a.txt"), []byte("a"), 0o644)
			if err := s.save("tree", tree); err == nil {
				return fmt.Errorf("a directory Save succeeded on a driver that claims no directories")
			}
			return nil
		}},
		{"Delete: refused by a driver that does not delete; the object stays", func() error {
			if s.deletes {
				return errSkip
			}
			if err := s.del("file.bin"); err == nil {
				return fmt.Errorf("Delete succeeded on a driver that claims no delete")
			}
			got, err := s.stream("file.bin")
			if err != nil || !bytes.Equal(got, s.payload) {
				return fmt.Errorf("the object after a refused Delete: %d bytes, %v", len(got), err)
			}
			return nil
		}},
		{"Save a directory; IsDirectory and ListObjects see it", func() error {
			if !s.directories {
				return errSkip
			}
			tree := filepath.Join(s.dir, "tree")
			if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
				return err
			}
			ioutil.WriteFile(filepath.Join(tree, "a.txt"), []byte("a"), 0o644)
			ioutil.WriteFile(filepath.Join(tree, "sub", "b.txt"), []byte("b"), 0o644)
			if err := s.save("tree", tree); err != nil {
				return err
			}
			c, cancel := ctx()
			defer cancel()
			r, err := s.c.IsDirectory(c, &pb.IsDirectoryRequest{Artifact: s.artifact("tree")})
			if err != nil {
				return err
			}
			if r.Error != "" || !r.IsDirectory {
				return fmt.Errorf("IsDirectory: %v %q", r.IsDirectory, r.Error)
			}
			got, err := s.list("tree")
			if err != nil {
				return err
			}
			want := []string{s.prefix + "tree/a.txt", s.prefix + "tree/sub/b.txt"}
			if !reflect.DeepEqual(got, want) {
				return fmt.Errorf("ListObjects: %v, want %v", got, want)
			}
			return nil
		}},
		{"Delete a file and a directory; reads then fail NOT_FOUND", func() error {
			if !s.deletes || !s.directories {
				return errSkip
			}
			for _, k := range []string{"file.bin", "streamed.bin", "tree/"} {
				if err := s.del(k); err != nil {
					return fmt.Errorf("delete %s: %v", k, err)
				}
			}
			if _, err := s.stream("file.bin"); status.Code(err) != codes.NotFound {
				return fmt.Errorf("OpenStream after Delete: %v, want NOT_FOUND", err)
			}
			// Nothing under the key: an empty list, or NOT_FOUND (both are what Argo's drivers answer).
			if got, err := s.list("tree"); status.Code(err) != codes.NotFound && (err != nil || len(got) != 0) {
				return fmt.Errorf("ListObjects after Delete: %v %v", got, err)
			}
			return nil
		}},
	}
}

func main() {
	socket := flag.String("socket", "", "the driver's unix socket")
	plugin := flag.String("plugin", "", "the plugin name in each artifact")
	config := flag.String("configuration", "", "the plugin configuration")
	prefix := flag.String("key-prefix", "", "prefix of every key")
	dir := flag.String("dir", "", "scratch directory")
	directories := flag.Bool("directories", true, "the driver stores directories (false: their Save must be refused)")
	deletes := flag.Bool("delete", true, "the driver deletes (false: Delete must be refused)")
	flag.Parse()
	// grpc-go's defaults, as Argo dials a plugin's socket.
	conn, err := grpc.Dial("unix://"+*socket, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithTimeout(30*time.Second))
	if err != nil {
		fmt.Fprintf(os.Stderr, "dial %s: %v\n", *socket, err)
		os.Exit(2)
	}
	defer conn.Close()
	payload := make([]byte, 3<<20+7)
	for i := range payload {
		payload[i] = byte(i*31 + i>>12)
	}
	s := &scenario{c: pb.NewArtifactServiceClient(conn), plugin: *plugin, config: *config, prefix: *prefix, dir: *dir, payload: payload,
		directories: *directories, deletes: *deletes}
	passed, failed := 0, 0
	for _, c := range s.checks() {
		if err := c.run(); err == errSkip {
			fmt.Printf("skip - %s: %v\n", c.name, err)
		} else if err != nil {
			fmt.Printf("not ok - %s: %v\n", c.name, err)
			failed++
		} else {
			fmt.Printf("ok - %s\n", c.name)
			passed++
		}
	}
	fmt.Printf("grpc-go: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
