// A grpc-go (Debian's golang-google-grpc-dev, GOPATH mode) helloworld.GreeterStream server, for the stream
// interop test: no generated code, the two messages hand-encoded, so it builds from grpc-go alone.
//
//	go-greeter-stream serve          listens on 127.0.0.1, a free port, and prints "listening on PORT"
//	go-greeter-stream call ADDRESS   calls ADDRESS's GreeterStream as a grpc-go client, prints JSON results
//
// The server: SayHelloStream sends `count` replies "Hello <name> <i>", `interval_ms` apart, with the response
// header hostname: go; a name "cut" ends the stream UNAVAILABLE "cut by go" after two replies. SayHelloBidi
// answers each request "Hello <name> <i>".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rawCodec hands the handlers the serialized messages as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string   { return "proto" }
func (rawCodec) String() string { return "proto" }

func varint(b []byte) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		x |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i] < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

// fields reads a message's string (wire type 2) and integer (wire type 0) fields by number.
func fields(b []byte) (map[uint64]string, map[uint64]uint64, error) {
	strs, ints := map[uint64]string{}, map[uint64]uint64{}
	for len(b) > 0 {
		key, n := varint(b)
		if n == 0 {
			return nil, nil, errors.New("bad varint")
		}
		b = b[n:]
		switch key & 7 {
		case 0:
			v, n := varint(b)
			if n == 0 {
				return nil, nil, errors.New("bad varint")
			}
			ints[key>>3], b = v, b[n:]
		case 2:
			l, n := varint(b)
			if n == 0 || uint64(len(b)-n) < l {
				return nil, nil, errors.New("bad length")
			}
			strs[key>>3], b = string(b[n:n+int(l)]), b[n+int(l):]
		default:
			return nil, nil, fmt.Errorf("wire type %d", key&7)
		}
	}
	return strs, ints, nil
}

func appendVarint(b []byte, x uint64) []byte {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

// message encodes field 1 (a string) and then fields 2, 3, ... (integers, left out when 0).
func message(text string, ints ...uint64) *[]byte {
	b := appendVarint([]byte{0x0a}, uint64(len(text)))
	b = append(b, text...)
	for i, v := range ints {
		if v != 0 {
			b = appendVarint(appendVarint(b, uint64(i+2)<<3), v)
		}
	}
	return &b
}

func reply(text string) *[]byte { return message(text) }

func sayHelloStream(_ interface{}, stream grpc.ServerStream) error {
	var req []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	strs, ints, err := fields(req)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	count := ints[2]
	if count == 0 {
		count = 10
	}
	if err := stream.SendHeader(metadata.Pairs("hostname", "go")); err != nil {
		return err
	}
	for i := uint64(1); i <= count; i++ {
		if i > 1 {
			time.Sleep(time.Duration(ints[3]) * time.Millisecond)
		}
		if strs[1] == "cut" && i == 3 {
			return status.Error(codes.Unavailable, "cut by go")
		}
		if err := stream.SendMsg(reply(fmt.Sprintf("Hello %s %d", strs[1], i))); err != nil {
			return err
		}
	}
	return nil
}

func sayHelloBidi(_ interface{}, stream grpc.ServerStream) error {
	if err := stream.SendHeader(metadata.Pairs("hostname", "go")); err != nil {
		return err
	}
	for i := 1; ; i++ {
		var req []byte
		if err := stream.RecvMsg(&req); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		strs, _, err := fields(req)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		if err := stream.SendMsg(reply(fmt.Sprintf("Hello %s %d", strs[1], i))); err != nil {
			return err
		}
	}
}

// outcome is one call's result as the test reads it (the grpcio peer's shape).
type outcome struct {
	Replies  []string `json:"replies"`
	Code     string   `json:"code"`
	Details  string   `json:"details"`
	Hostname *string  `json:"hostname"`
}

// call runs one stream: requests sent (`gap` apart), then the replies read until the status.
func call(conn *grpc.ClientConn, method string, server bool, requests []*[]byte, gap time.Duration, timeout time.Duration) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := outcome{Replies: []string{}}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: !server}, method, grpc.ForceCodec(rawCodec{}))
	if err == nil {
		for i, r := range requests {
			if i > 0 {
				time.Sleep(gap)
			}
			if err = stream.SendMsg(r); err != nil {
				break
			}
		}
		if err == nil || err == io.EOF {
			err = stream.CloseSend()
		}
		for err == nil {
			var b []byte
			if err = stream.RecvMsg(&b); err == nil {
				strs, _, _ := fields(b)
				out.Replies = append(out.Replies, strs[1])
			}
		}
		if h, herr := stream.Header(); herr == nil && len(h.Get("hostname")) > 0 {
			out.Hostname = &h.Get("hostname")[0]
		}
	}
	if err == io.EOF {
		err = nil
	}
	st := status.Convert(err)
	out.Code, out.Details = st.Code().String(), st.Message()
	return out
}

func callAll(address string) {
	conn, err := grpc.Dial(address, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithTimeout(10*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	const stream, bidi = "/helloworld.GreeterStream/SayHelloStream", "/helloworld.GreeterStream/SayHelloBidi"
	results := map[string]outcome{
		"stream":   call(conn, stream, true, []*[]byte{message("go", 3, 50)}, 0, 10*time.Second),
		"bidi":     call(conn, bidi, false, []*[]byte{message("a"), message("b"), message("c")}, 20*time.Millisecond, 10*time.Second),
		"deadline": call(conn, stream, true, []*[]byte{message("go", 10, 300)}, 0, time.Second),
	}
	json.NewEncoder(os.Stdout).Encode(results)
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "call" {
		callAll(os.Args[2])
		return
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := grpc.NewServer(grpc.CustomCodec(rawCodec{}))
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: "helloworld.GreeterStream",
		HandlerType: (*interface{})(nil),
		Streams: []grpc.StreamDesc{
			{StreamName: "SayHelloStream", Handler: sayHelloStream, ServerStreams: true},
			{StreamName: "SayHelloBidi", Handler: sayHelloBidi, ServerStreams: true, ClientStreams: true},
		},
	}, struct{}{})
	fmt.Printf("listening on %d\n", lis.Addr().(*net.TCPAddr).Port)
	if err := server.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
