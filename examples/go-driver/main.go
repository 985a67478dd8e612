// Command ferry-go-driver is an Argo Workflows artifact driver written from
// proto/artifact.proto alone with grpc-go. It stores artifacts in a local
// directory named per request by the configuration `root: /some/dir`.
//
// Usage: ferry-go-driver SOCKET_PATH
//
// It serves artifact.ArtifactService (and the gRPC health service) on a unix
// socket, as Argo runs a plugin sidecar, and exits 0 on SIGTERM after the
// calls in flight finish or a grace period runs out.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "ferrygodriver/artifact"
)

const (
	// frameSize is far under the 4 MiB message limit of Argo's grpc-go
	// clients, and small because each open stream holds about two frames
	// (one being read, one queued in grpc-go): with 1 MiB frames, 32
	// parallel streams took the driver past 150 MiB RSS, with 256 KiB
	// about 70 MiB, at no measurable cost in throughput.
	frameSize = 256 << 10
	// maxStreams bounds the memory that clients which open streams and
	// stop reading can pin (a frame each, plus what grpc-go queues).
	maxStreams = 64
	// streamWait is how long an OpenStream waits for a free slot before
	// it is told to come back later.
	streamWait = 5 * time.Second
	// shutdownGrace stays inside Kubernetes' default 30 s and Argo e2e's
	// 10 s termination grace, so SIGTERM always ends in exit 0, not SIGKILL.
	shutdownGrace = 5 * time.Second
	// maxMessage admits SaveStream chunks larger than Argo's 2 MiB from
	// other clients while still bounding a single allocation.
	maxMessage = 8 << 20
)

type driver struct {
	pb.UnimplementedArtifactServiceServer
	scratch *scratch
	streams chan struct{}
	frames  sync.Pool
	calls   atomic.Int64 // in flight, so shutdown knows when it may stop waiting
}

// count keeps d.calls for every unary call.
func (d *driver) count(ctx context.Context, req interface{}, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	d.calls.Add(1)
	defer d.calls.Add(-1)
	return handler(ctx, req)
}

// countStream keeps d.calls for every streaming call.
func (d *driver) countStream(srv interface{}, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	d.calls.Add(1)
	defer d.calls.Add(-1)
	return handler(srv, ss)
}

func newDriver() *driver {
	return &driver{
		scratch: &scratch{paths: map[string]struct{}{}},
		streams: make(chan struct{}, maxStreams),
		frames:  sync.Pool{New: func() interface{} { return make([]byte, frameSize) }},
	}
}

// inBand turns a failure into what Argo expects from Load, Save and Delete:
// success=false with a message, except a missing object, which is a
// NOT_FOUND status so an executor can skip an optional input.
func inBand(method string, err error) (string, error) {
	if codeOf(err) == codes.NotFound {
		return "", status.Error(codes.NotFound, err.Error())
	}
	if codeOf(err) == codes.Internal {
		log.Printf("%s: %v", method, err)
	}
	return err.Error(), nil
}

func (d *driver) Load(_ context.Context, req *pb.LoadArtifactRequest) (*pb.LoadArtifactResponse, error) {
	if err := d.load(req); err != nil {
		msg, st := inBand("Load", err)
		return &pb.LoadArtifactResponse{Error: msg}, st
	}
	return &pb.LoadArtifactResponse{Success: true}, nil
}

// load copies the object or tree to a hidden sibling of the destination and
// renames it into place, so the destination is complete or untouched even
// when the call is cut short.
func (d *driver) load(req *pb.LoadArtifactRequest) error {
	if req.Path == "" {
		return invalid("the load request has an empty path")
	}
	loc, err := locate(req.InputArtifact)
	if err != nil {
		return err
	}
	missing := notFound("no object or directory at key %s", shown(loc.key))
	if _, err := os.Stat(loc.path); errors.Is(err, fs.ErrNotExist) {
		return missing
	}
	dst := filepath.Clean(req.Path)
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o777); err != nil {
		return fmt.Errorf("creating %s: %w", parent, cause(err))
	}
	base := filepath.Base(dst)
	if len(base) > 64 {
		base = base[:64] // the staged name must stay within NAME_MAX
	}
	tmp, done := d.scratch.make(parent, "."+base+".", ".partial")
	defer done()
	exists, files, err := stage(loc.path, tmp)
	switch {
	case err != nil:
		return fmt.Errorf("loading key %s into %s: %w", shown(loc.key), dst, cause(err))
	case !exists || files == 0:
		return missing
	}
	if err := replace(tmp, dst, parent); err != nil {
		return fmt.Errorf("moving key %s into place at %s: %w", shown(loc.key), dst, cause(err))
	}
	return nil
}

func (d *driver) Save(_ context.Context, req *pb.SaveArtifactRequest) (*pb.SaveArtifactResponse, error) {
	if err := d.save(req); err != nil {
		msg, st := inBand("Save", err)
		return &pb.SaveArtifactResponse{Error: msg}, st
	}
	return &pb.SaveArtifactResponse{Success: true}, nil
}

// save stages a full copy inside the root, then renames it over the key:
// a reader, a concurrent writer or a crash never sees a partial object.
func (d *driver) save(req *pb.SaveArtifactRequest) error {
	if req.Path == "" {
		return invalid("the save request has an empty path")
	}
	loc, err := locate(req.OutputArtifact)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(loc.staging(), 0o777); err != nil {
		return fmt.Errorf("creating the staging area: %w", cause(err))
	}
	tmp, done := d.scratch.make(loc.staging(), "", "")
	defer done()
	exists, _, err := stage(req.Path, tmp)
	switch {
	case err != nil:
		return fmt.Errorf("saving %s to key %s: %w", req.Path, shown(loc.key), cause(err))
	case !exists:
		return invalid("local path %s does not exist", req.Path)
	}
	if err := replace(tmp, loc.path, loc.staging()); err != nil {
		return fmt.Errorf("storing key %s: %w", shown(loc.key), cause(err))
	}
	return nil
}

func (d *driver) Delete(_ context.Context, req *pb.DeleteArtifactRequest) (*pb.DeleteArtifactResponse, error) {
	if err := d.delete(req); err != nil {
		msg, st := inBand("Delete", err)
		return &pb.DeleteArtifactResponse{Error: msg}, st
	}
	return &pb.DeleteArtifactResponse{Success: true}, nil
}

// delete follows Argo's rule: a key ending in `/` is a directory (everything
// under it), any other key exactly one object, never what lies under key/,
// which may belong to another artifact. A missing key is success, because
// artifact GC retries failures forever.
func (d *driver) delete(req *pb.DeleteArtifactRequest) error {
	loc, err := locate(req.GetArtifact())
	if err != nil {
		return err
	}
	info, err := os.Lstat(loc.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("deleting key %s: %w", shown(loc.key), cause(err))
	case strings.HasSuffix(loc.raw, "/") && info.IsDir():
		// Out of sight first, so no Load copies a half-deleted tree.
		if err := os.MkdirAll(loc.staging(), 0o777); err != nil {
			return fmt.Errorf("creating the staging area: %w", cause(err))
		}
		old := aside(loc.staging())
		if err := os.Rename(loc.path, old); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("deleting directory key %s: %w", shown(loc.key), cause(err))
		}
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("deleting directory key %s: %w", shown(loc.key), cause(err))
		}
	case !strings.HasSuffix(loc.raw, "/") && !info.IsDir():
		if err := os.Remove(loc.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("deleting key %s: %w", shown(loc.key), cause(err))
		}
	}
	return nil
}

func (d *driver) ListObjects(_ context.Context, req *pb.ListObjectsRequest) (*pb.ListObjectsResponse, error) {
	keys, err := d.list(req)
	if err != nil {
		msg, st := inBand("ListObjects", err)
		return &pb.ListObjectsResponse{Error: msg}, st
	}
	return &pb.ListObjectsResponse{Objects: keys}, nil
}

// list names every object under key/ by its full key; a plain object has
// nothing under it, which is an empty list rather than an error.
func (d *driver) list(req *pb.ListObjectsRequest) ([]string, error) {
	loc, err := locate(req.GetArtifact())
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(loc.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, notFound("no object or directory at key %s", shown(loc.key))
	case err != nil:
		return nil, fmt.Errorf("listing key %s: %w", shown(loc.key), cause(err))
	case !info.IsDir():
		return []string{}, nil
	}
	keys, err := listing(loc, false)
	if err != nil {
		return nil, fmt.Errorf("listing key %s: %w", shown(loc.key), cause(err))
	}
	sort.Strings(keys)
	return keys, nil
}

func (d *driver) IsDirectory(_ context.Context, req *pb.IsDirectoryRequest) (*pb.IsDirectoryResponse, error) {
	dir, err := isDirectory(req)
	if err != nil {
		msg, _ := inBand("IsDirectory", err)
		return &pb.IsDirectoryResponse{Error: msg}, nil
	}
	return &pb.IsDirectoryResponse{IsDirectory: dir}, nil
}

// isDirectory is true when at least one object lies under key/, which is
// what Argo's Load asks before choosing between a file and a tree; an
// emptied directory left behind by deletes does not count.
func isDirectory(req *pb.IsDirectoryRequest) (bool, error) {
	loc, err := locate(req.GetArtifact())
	if err != nil {
		return false, err
	}
	info, err := os.Stat(loc.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("inspecting key %s: %w", shown(loc.key), cause(err))
	case !info.IsDir():
		return false, nil
	}
	keys, err := listing(loc, true)
	if err != nil {
		return false, fmt.Errorf("inspecting key %s: %w", shown(loc.key), cause(err))
	}
	return len(keys) > 0, nil
}

// OpenStream sends the object in frames and ends with one empty is_end
// frame. Failures before the first byte are a status; a failure after it is
// an error status too, never a clean end, so a truncated read can't pass
// for a shorter object.
func (d *driver) OpenStream(req *pb.OpenStreamRequest, stream pb.ArtifactService_OpenStreamServer) error {
	loc, err := locate(req.GetArtifact())
	if err != nil {
		return status.Error(codeOf(err), err.Error())
	}
	select {
	case d.streams <- struct{}{}:
		defer func() { <-d.streams }()
	case <-stream.Context().Done():
		return status.FromContextError(stream.Context().Err()).Err()
	case <-time.After(streamWait):
		return status.Errorf(codes.ResourceExhausted, "%d streams are open; try again", maxStreams)
	}
	f, err := os.Open(loc.path)
	if errors.Is(err, fs.ErrNotExist) {
		return status.Errorf(codes.NotFound, "no object at key %s", shown(loc.key))
	} else if err != nil {
		return status.Errorf(codes.Internal, "opening key %s: %v", shown(loc.key), cause(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return status.Errorf(codes.Internal, "opening key %s: %v", shown(loc.key), cause(err))
	}
	if !info.Mode().IsRegular() {
		return status.Errorf(codes.NotFound, "key %s is a directory, not an object", shown(loc.key))
	}
	// Objects are only ever replaced by rename, never rewritten in place, so
	// the open file's size is fixed; reading a different count means the
	// storage itself failed or was tampered with.
	size := info.Size()
	buf := d.frames.Get().([]byte)
	defer d.frames.Put(buf)
	var sent int64
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			// Send has encoded the frame by the time it returns, so buf
			// can be refilled at once.
			if err := stream.Send(&pb.OpenStreamResponse{Data: buf[:n]}); err != nil {
				return err
			}
			sent += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return status.Errorf(codes.Unavailable, "reading key %s: %v", shown(loc.key), cause(err))
		}
	}
	if sent != size {
		return status.Errorf(codes.DataLoss, "key %s changed while it was read: %d of %d bytes", shown(loc.key), sent, size)
	}
	return stream.Send(&pb.OpenStreamResponse{IsEnd: true})
}

// SaveStream stages the upload and renames it into place only after the
// client closed the stream normally: a cancelled upload leaves the previous
// version, not a truncated one.
func (d *driver) SaveStream(stream pb.ArtifactService_SaveStreamServer) error {
	err := d.saveStream(stream)
	if err == nil {
		return stream.SendAndClose(&pb.SaveArtifactResponse{Success: true})
	}
	if _, ok := status.FromError(err); ok {
		return err // the stream broke or was cancelled: nobody awaits a reply
	}
	msg, st := inBand("SaveStream", err)
	if st != nil {
		return st
	}
	return stream.SendAndClose(&pb.SaveArtifactResponse{Error: msg})
}

func (d *driver) saveStream(stream pb.ArtifactService_SaveStreamServer) error {
	first, err := stream.Recv()
	if err == io.EOF {
		return invalid("the stream is empty; its first message must carry output_artifact")
	} else if err != nil {
		return err
	}
	if first.OutputArtifact == nil {
		return invalid("the first SaveStream message must carry output_artifact")
	}
	loc, err := locate(first.OutputArtifact)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(loc.staging(), 0o777); err != nil {
		return fmt.Errorf("creating the staging area: %w", cause(err))
	}
	tmp, done := d.scratch.make(loc.staging(), "", "")
	defer done()
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return fmt.Errorf("staging key %s: %w", shown(loc.key), cause(err))
	}
	defer out.Close()
	chunk := first.Chunk
	for {
		if _, err := out.Write(chunk); err != nil {
			return fmt.Errorf("staging key %s: %w", shown(loc.key), cause(err))
		}
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if msg.OutputArtifact != nil {
			return invalid("output_artifact may only come in the first SaveStream message")
		}
		chunk = msg.Chunk
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("staging key %s: %w", shown(loc.key), cause(err))
	}
	if err := stream.Context().Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	if err := replace(tmp, loc.path, loc.staging()); err != nil {
		return fmt.Errorf("storing key %s: %w", shown(loc.key), cause(err))
	}
	return nil
}

func (d *driver) GetCapabilities(context.Context, *pb.GetCapabilitiesRequest) (*pb.GetCapabilitiesResponse, error) {
	return &pb.GetCapabilitiesResponse{SupportsSaveStream: true}, nil
}

// listen binds the socket, replacing a stale one left by a killed
// predecessor, but never a regular file that happens to have its name.
func listen(socket string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(socket), 0o777); err != nil {
		return nil, err
	}
	if info, err := os.Lstat(socket); err == nil {
		if info.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; refusing to replace it", socket)
		}
		if err := os.Remove(socket); err != nil {
			return nil, err
		}
	}
	return net.Listen("unix", socket)
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("ferry-go-driver: ")
	if len(os.Args) != 2 || os.Args[1] == "" {
		fmt.Fprintln(os.Stderr, "usage: ferry-go-driver SOCKET_PATH\n\nServes artifact.ArtifactService on the unix socket SOCKET_PATH (a unix:// prefix is accepted).")
		os.Exit(1)
	}
	// Argo's pods hand files between containers that run as different
	// users (the executor, the main container, this sidecar), as an
	// emptyDir of mode 0777 expects: what the driver creates must stay
	// readable, writable and removable by them, and the socket connectable.
	syscall.Umask(0)
	socket := strings.TrimPrefix(os.Args[1], "unix://")
	lis, err := listen(socket)
	if err != nil {
		log.Printf("cannot serve on %s: %v", socket, err)
		os.Exit(1)
	}

	d := newDriver()
	server := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.UnaryInterceptor(d.count),
		grpc.StreamInterceptor(d.countStream),
	)
	pb.RegisterArtifactServiceServer(server, d)
	healthy := health.NewServer()
	healthpb.RegisterHealthServer(server, healthy)
	// Reflection lets grpcurl and similar tools call the driver without a
	// copy of the proto.
	reflection.Register(server)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- server.Serve(lis) }()
	log.Printf("serving on %s", socket)

	select {
	case err := <-served:
		log.Printf("server failed: %v", err)
		os.Exit(1)
	case sig := <-signals:
		log.Printf("%v: stopping", sig)
	}
	healthy.Shutdown()
	// GracefulStop refuses new connections and calls, but also waits for
	// every idle connection to go away, which a client that keeps its
	// channel open (Argo's executor does) may never do. So it only runs
	// alongside: the wait ends when no call is in flight any more, or at
	// the grace period, and Stop then closes whatever is left.
	stopped := make(chan struct{})
	go func() {
		server.GracefulStop()
		close(stopped)
	}()
	deadline := time.Now().Add(shutdownGrace)
wait:
	for d.calls.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-stopped:
			break wait
		case <-time.After(10 * time.Millisecond):
		}
	}
	if n := d.calls.Load(); n > 0 && !time.Now().Before(deadline) {
		log.Printf("%d calls still running after %v: cancelling them", n, shutdownGrace)
	}
	// Stop also closes the listener, which unlinks the socket.
	server.Stop()
	d.scratch.removeAll()
	os.Exit(0)
}
