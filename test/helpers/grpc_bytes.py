# Protobuf by hand for the Python gRPC peers (python-greeter.py, python-greeter-stream.py): the few wire types
# the helloworld messages use, so the peers need no generated code.


def varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string_field(text, number=1):
    data = text.encode("utf-8")
    return varint(number << 3 | 2) + varint(len(data)) + data


def fields(message):
    """A proto3 message's varint and length-delimited fields: {number: int or bytes}."""
    out, at = {}, 0

    def read_varint():
        nonlocal at
        value, shift = 0, 0
        while True:
            b = message[at]
            at += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    while at < len(message):
        key = read_varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out[number] = read_varint()
        elif wire == 2:
            length = read_varint()
            out[number] = message[at:at + length]
            at += length
        else:
            raise ValueError(f"wire type {wire}")
    return out


def text_field(message, number=1):
    return fields(message).get(number, b"").decode("utf-8")
