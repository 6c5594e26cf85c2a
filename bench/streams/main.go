// The grpc-go side of bench/streams.ts: helloworld.GreeterStream served by grpc-go (Debian's 1.33, as the
// peer kit's go-server), and the load client that drives both servers alike.
//
//	streampeer serve -port N
//	streampeer load -addr HOST:PORT -mode server|bidi -streams K -messages M
//
// serve: SayHelloStream sends `count` replies "Hello <name> <i>" (no interval: none is asked), SayHelloBidi
// answers each request "Hello <name> <i>", as src/server/greeter-stream.ts does.
// load: K streams at once on one connection. -mode server: each stream asks for M/K replies, and every
// reply is checked; prints messages/s. -mode bidi: each stream makes M/K round trips one after the other
// (send a request, read its reply, checked); prints round trips/s and the round trips' p50/p99. One JSON line.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"

	pb "streampeer/helloworld"
)

type streams struct {
	pb.UnimplementedGreeterStreamServer
}

func (streams) SayHelloStream(in *pb.HelloStreamRequest, s pb.GreeterStream_SayHelloStreamServer) error {
	count := int(in.GetCount())
	if count == 0 {
		count = 10
	}
	for i := 1; i <= count; i++ {
		if err := s.Send(&pb.HelloReply{Message: fmt.Sprintf("Hello %s %d", in.GetName(), i)}); err != nil {
			return err
		}
	}
	return nil
}

func (streams) SayHelloBidi(s pb.GreeterStream_SayHelloBidiServer) error {
	for i := 1; ; i++ {
		in, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&pb.HelloReply{Message: fmt.Sprintf("Hello %s %d", in.GetName(), i)}); err != nil {
			return err
		}
	}
}

type result struct {
	Mode     string  `json:"mode"`
	Count    int     `json:"count"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_sec"`
	P50Ms    float64 `json:"p50_ms,omitempty"`
	P99Ms    float64 `json:"p99_ms,omitempty"`
	Verified bool    `json:"verified"`
	Error    string  `json:"error,omitempty"`
}

func load(addr, mode string, k, total int) result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := grpc.DialContext(ctx, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return result{Mode: mode, Error: err.Error()}
	}
	defer conn.Close()
	client := pb.NewGreeterStreamClient(conn)
	per := total / k
	var mu sync.Mutex
	var firstErr error
	var rtts []time.Duration
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	start := time.Now()
	for s := 0; s < k; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			name := fmt.Sprintf("s%d", s)
			if mode == "server" {
				stream, err := client.SayHelloStream(ctx, &pb.HelloStreamRequest{Name: name, Count: int32(per)})
				if err != nil {
					fail(err)
					return
				}
				for i := 1; i <= per; i++ {
					reply, err := stream.Recv()
					if err != nil {
						fail(err)
						return
					}
					if want := fmt.Sprintf("Hello %s %d", name, i); reply.GetMessage() != want {
						fail(fmt.Errorf("got %q, want %q", reply.GetMessage(), want))
						return
					}
				}
				if _, err := stream.Recv(); err != io.EOF {
					fail(fmt.Errorf("after %d replies: %v, want the end of the stream", per, err))
				}
				return
			}
			stream, err := client.SayHelloBidi(ctx)
			if err != nil {
				fail(err)
				return
			}
			local := make([]time.Duration, 0, per)
			for i := 1; i <= per; i++ {
				t0 := time.Now()
				if err := stream.Send(&pb.HelloRequest{Name: name}); err != nil {
					fail(err)
					return
				}
				reply, err := stream.Recv()
				if err != nil {
					fail(err)
					return
				}
				local = append(local, time.Since(t0))
				if want := fmt.Sprintf("Hello %s %d", name, i); reply.GetMessage() != want {
					fail(fmt.Errorf("got %q, want %q", reply.GetMessage(), want))
					return
				}
			}
			if err := stream.CloseSend(); err != nil {
				fail(err)
				return
			}
			if _, err := stream.Recv(); err != io.EOF {
				fail(fmt.Errorf("after %d round trips: %v, want the end of the stream", per, err))
			}
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
		}(s)
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()
	r := result{Mode: mode, Count: per * k, Seconds: seconds, PerSec: float64(per*k) / seconds, Verified: firstErr == nil}
	if firstErr != nil {
		r.Error = firstErr.Error()
	}
	if len(rtts) > 0 {
		sort.Slice(rtts, func(a, b int) bool { return rtts[a] < rtts[b] })
		at := func(p float64) float64 {
			i := int(p*float64(len(rtts))+0.9999) - 1
			if i < 0 {
				i = 0
			}
			return float64(rtts[i].Microseconds()) / 1000
		}
		r.P50Ms, r.P99Ms = at(0.50), at(0.99)
	}
	return r
}

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: streampeer serve|load [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	port := fs.Int("port", 10000, "serve: the port (127.0.0.1)")
	addr := fs.String("addr", "127.0.0.1:10000", "load: the server")
	mode := fs.String("mode", "server", "load: server | bidi")
	k := fs.Int("streams", 8, "load: streams at once")
	messages := fs.Int("messages", 100000, "load: replies (server) or round trips (bidi), all streams together")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "serve":
		lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
		if err != nil {
			log.Fatal(err)
		}
		s := grpc.NewServer()
		pb.RegisterGreeterStreamServer(s, streams{})
		log.Printf("Listening :%d", *port)
		log.Fatal(s.Serve(lis))
	case "load":
		r := load(*addr, *mode, *k, *messages)
		json.NewEncoder(os.Stdout).Encode(r)
		if !r.Verified {
			os.Exit(1)
		}
	default:
		log.Fatalf("unknown command %s", os.Args[1])
	}
}
