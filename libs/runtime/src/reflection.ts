import { fromBinary } from '@bufbuild/protobuf';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import {
  FileDescriptorProtoSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) over descriptor sets exactly as buf built
 * them. Each file is served byte for byte: with its imports listed, fully-qualified type names and
 * its options as written, which is what strict clients (grpcurl, Python's descriptor pool) need.
 * (@grpc/reflection re-derives files from proto-loader's objects, which loses all three.)
 */

interface ReflectedFile {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly dependencies: readonly string[];
}

interface Extension {
  readonly extendee: string;
  readonly number: number;
  readonly file: string;
}

/** The raw bytes of each `file` (field 1) of a serialized FileDescriptorSet. */
function filesOf(descriptorSet: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(descriptorSet);
  const out: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) out.push(reader.bytes());
    else reader.skip(wireType, field);
  }
  return out;
}

export class DescriptorReflection {
  private readonly files = new Map<string, ReflectedFile>();
  /** Fully-qualified symbol (no leading dot) -> file name. */
  private readonly symbols = new Map<string, string>();
  private readonly extensions: Extension[] = [];

  /** `services`: the names `list_services` answers with (the services this server hosts). */
  constructor(
    descriptorSets: readonly Uint8Array[],
    private readonly services: readonly string[],
  ) {
    for (const set of descriptorSets) {
      for (const bytes of filesOf(set)) {
        const file = fromBinary(FileDescriptorProtoSchema, bytes);
        if (this.files.has(file.name)) continue;
        this.files.set(file.name, { name: file.name, bytes, dependencies: file.dependency });
        const prefix = file.package ? `${file.package}.` : '';
        const index = (symbol: string) => this.symbols.set(symbol, file.name);
        const addExtensions = (fields: readonly FieldDescriptorProto[], scope: string) => {
          for (const f of fields) {
            index(`${scope}${f.name}`);
            this.extensions.push({ extendee: f.extendee.replace(/^\./, ''), number: f.number, file: file.name });
          }
        };
        const addEnum = (e: EnumDescriptorProto, scope: string) => index(`${scope}${e.name}`);
        const addMessage = (m: DescriptorProto, scope: string) => {
          const name = `${scope}${m.name}`;
          index(name);
          for (const f of m.field) index(`${name}.${f.name}`);
          for (const n of m.nestedType) addMessage(n, `${name}.`);
          for (const e of m.enumType) addEnum(e, `${name}.`);
          addExtensions(m.extension, `${name}.`);
        };
        for (const m of file.messageType) addMessage(m, prefix);
        for (const e of file.enumType) addEnum(e, prefix);
        addExtensions(file.extension, prefix);
        for (const s of file.service) {
          index(`${prefix}${s.name}`);
          for (const m of s.method) index(`${prefix}${s.name}.${m.name}`);
        }
      }
    }
    const missing = services.filter((s) => !this.symbols.has(s));
    if (missing.length > 0) throw new Error(`no descriptor for service(s) ${missing.join(', ')}`);
  }

  /** A file followed by every file it imports, directly or not. */
  private withDependencies(name: string): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (n: string): void => {
      if (seen.has(n)) return;
      seen.add(n);
      const f = this.files.get(n);
      if (!f) return;
      out.push(f.bytes);
      for (const d of f.dependencies) visit(d);
    };
    visit(name);
    return out;
  }

  /** Answers one ServerReflectionRequest (serialized), as a serialized ServerReflectionResponse. */
  answer(requestBytes: Uint8Array): Uint8Array {
    const request = decodeRequest(requestBytes);
    const response = new BinaryWriter();
    response.tag(1, WireType.LengthDelimited).string(request.host);
    response.tag(2, WireType.LengthDelimited).bytes(requestBytes);
    const files = (list: Uint8Array[]) => {
      const w = new BinaryWriter();
      for (const f of list) w.tag(1, WireType.LengthDelimited).bytes(f);
      response.tag(4, WireType.LengthDelimited).bytes(w.finish());
    };
    const notFound = (what: string) => {
      const w = new BinaryWriter();
      w.tag(1, WireType.Varint).int32(grpc.status.NOT_FOUND);
      w.tag(2, WireType.LengthDelimited).string(what);
      response.tag(7, WireType.LengthDelimited).bytes(w.finish());
    };
    const q = request.query;
    switch (q.kind) {
      case 'list_services': {
        const w = new BinaryWriter();
        for (const s of this.services)
          w.tag(1, WireType.LengthDelimited).bytes(new BinaryWriter().tag(1, 2).string(s).finish());
        response.tag(6, WireType.LengthDelimited).bytes(w.finish());
        break;
      }
      case 'file_by_filename':
        if (this.files.has(q.value)) files(this.withDependencies(q.value));
        else notFound(`file not found: ${q.value}`);
        break;
      case 'file_containing_symbol': {
        const file = this.symbols.get(q.value.replace(/^\./, ''));
        if (file) files(this.withDependencies(file));
        else notFound(`symbol not found: ${q.value}`);
        break;
      }
      case 'file_containing_extension': {
        const ext = this.extensions.find((e) => e.extendee === q.type.replace(/^\./, '') && e.number === q.number);
        if (ext) files(this.withDependencies(ext.file));
        else notFound(`extension ${q.number} of ${q.type} not found`);
        break;
      }
      case 'all_extension_numbers_of_type': {
        const type = q.value.replace(/^\./, '');
        if (!this.symbols.has(type)) {
          notFound(`type not found: ${q.value}`);
          break;
        }
        const w = new BinaryWriter();
        w.tag(1, WireType.LengthDelimited).string(type);
        for (const e of this.extensions) if (e.extendee === type) w.tag(2, WireType.Varint).int32(e.number);
        response.tag(5, WireType.LengthDelimited).bytes(w.finish());
        break;
      }
      case 'none': {
        const w = new BinaryWriter();
        w.tag(1, WireType.Varint).int32(grpc.status.INVALID_ARGUMENT);
        w.tag(2, WireType.LengthDelimited).string('empty reflection request');
        response.tag(7, WireType.LengthDelimited).bytes(w.finish());
        break;
      }
    }
    return response.finish();
  }

  /** Serves grpc.reflection.v1 and v1alpha (same messages, two package names) on `server`. */
  addToServer(server: grpc.Server): void {
    for (const pkg of ['grpc.reflection.v1', 'grpc.reflection.v1alpha']) {
      const definition: grpc.ServiceDefinition = {
        ServerReflectionInfo: {
          path: `/${pkg}.ServerReflection/ServerReflectionInfo`,
          requestStream: true,
          responseStream: true,
          requestSerialize: (b: Uint8Array) => Buffer.from(b),
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Uint8Array) => Buffer.from(b),
          responseDeserialize: (b: Buffer) => b,
        },
      };
      server.addService(definition, {
        ServerReflectionInfo: (call: grpc.ServerDuplexStream<Buffer, Uint8Array>) => {
          call.on('data', (req: Buffer) => {
            try {
              call.write(this.answer(req));
            } catch (err) {
              call.destroy(err instanceof Error ? err : new Error(String(err)));
            }
          });
          call.on('end', () => call.end());
          call.on('error', () => undefined);
        },
      });
    }
  }
}

type Query =
  | {
      kind: 'list_services' | 'file_by_filename' | 'file_containing_symbol' | 'all_extension_numbers_of_type';
      value: string;
    }
  | { kind: 'file_containing_extension'; type: string; number: number }
  | { kind: 'none' };

function decodeRequest(bytes: Uint8Array): { host: string; query: Query } {
  const r = new BinaryReader(bytes);
  let host = '';
  let query: Query = { kind: 'none' };
  const strings: Record<number, Exclude<Query['kind'], 'file_containing_extension' | 'none'>> = {
    3: 'file_by_filename',
    4: 'file_containing_symbol',
    6: 'all_extension_numbers_of_type',
    7: 'list_services',
  };
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    const kind = strings[field];
    if (field === 1 && wireType === WireType.LengthDelimited) host = r.string();
    else if (kind && wireType === WireType.LengthDelimited) query = { kind, value: r.string() };
    else if (field === 5 && wireType === WireType.LengthDelimited) {
      const e = new BinaryReader(r.bytes());
      let type = '';
      let number = 0;
      while (e.pos < e.len) {
        const [f, w] = e.tag();
        if (f === 1 && w === WireType.LengthDelimited) type = e.string();
        else if (f === 2 && w === WireType.Varint) number = e.int32();
        else e.skip(w, f);
      }
      query = { kind: 'file_containing_extension', type, number };
    } else r.skip(wireType, field);
  }
  return { host, query };
}
