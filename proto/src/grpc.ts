// Adapter between protobuf-es service descriptors and @grpc/grpc-js. grpc-js wants a
// ServiceDefinition with serialize/deserialize functions per method; protobuf-es gives typed
// descriptors. No maintained package bridges protobuf-es v2 and grpc-js, so this file does, with
// toBinary/fromBinary as the codec.
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  type MessageShape,
  toBinary,
} from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';

type In<M> = M extends { input: infer I extends DescMessage } ? MessageShape<I> : never;
type Out<M> = M extends { output: infer O extends DescMessage } ? MessageShape<O> : never;

/** The server-side handler for one method, typed by its kind. */
export type GrpcHandler<M> = M extends { methodKind: 'unary' }
  ? grpc.handleUnaryCall<In<M>, Out<M>>
  : M extends { methodKind: 'server_streaming' }
    ? grpc.handleServerStreamingCall<In<M>, Out<M>>
    : M extends { methodKind: 'client_streaming' }
      ? grpc.handleClientStreamingCall<In<M>, Out<M>>
      : M extends { methodKind: 'bidi_streaming' }
        ? grpc.handleBidiStreamingCall<In<M>, Out<M>>
        : never;

/** Handlers for every method of a service, keyed by the method's local (camelCase) name. */
export type GrpcHandlers<S extends DescService> = {
  [K in keyof S['method']]: GrpcHandler<S['method'][K]>;
};

type ClientMethod<M> = M extends { methodKind: 'unary' }
  ? (
      request: In<M>,
      metadata: grpc.Metadata,
      options: Partial<grpc.CallOptions>,
      callback: grpc.requestCallback<Out<M>>,
    ) => grpc.ClientUnaryCall
  : M extends { methodKind: 'server_streaming' }
    ? (
        request: In<M>,
        metadata?: grpc.Metadata,
        options?: Partial<grpc.CallOptions>,
      ) => grpc.ClientReadableStream<Out<M>>
    : M extends { methodKind: 'client_streaming' }
      ? (
          metadata: grpc.Metadata,
          options: Partial<grpc.CallOptions>,
          callback: grpc.requestCallback<Out<M>>,
        ) => grpc.ClientWritableStream<In<M>>
      : M extends { methodKind: 'bidi_streaming' }
        ? (
            metadata?: grpc.Metadata,
            options?: Partial<grpc.CallOptions>,
          ) => grpc.ClientDuplexStream<In<M>, Out<M>>
        : never;

/** A grpc-js client whose methods carry the protobuf-es message types. */
export type GrpcClient<S extends DescService> = grpc.Client & {
  [K in keyof S['method']]: ClientMethod<S['method'][K]>;
};

function methodDefinition(service: DescService, method: DescMethod): grpc.MethodDefinition<object, object> {
  const input = method.input;
  const output = method.output;
  return {
    path: `/${service.typeName}/${method.name}`,
    requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
    responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    requestSerialize: (value: object) => Buffer.from(toBinary(input, coerce(input, value))),
    requestDeserialize: (bytes: Buffer) => fromBinary(input, bytes),
    responseSerialize: (value: object) => Buffer.from(toBinary(output, coerce(output, value))),
    responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
    originalName: method.localName,
  };
}

// Accept plain init objects as well as created messages, as connect-es does.
function coerce<D extends DescMessage>(schema: D, value: object): MessageShape<D> {
  return ('$typeName' in value ? value : create(schema, value as never)) as MessageShape<D>;
}

/** Turns a protobuf-es service descriptor into a grpc-js service definition. */
export function grpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methods) {
    definition[method.localName] = methodDefinition(service, method);
  }
  return definition as grpc.ServiceDefinition;
}

/** Registers typed handlers for a protobuf-es service on a grpc-js server. */
export function addGrpcService<S extends DescService>(
  server: grpc.Server,
  service: S,
  handlers: GrpcHandlers<S>,
): void {
  server.addService(grpcServiceDefinition(service), handlers as unknown as grpc.UntypedServiceImplementation);
}

/** Makes a typed grpc-js client for a protobuf-es service. */
export function createGrpcClient<S extends DescService>(
  service: S,
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
): GrpcClient<S> {
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.typeName);
  return new Ctor(address, credentials, options) as unknown as GrpcClient<S>;
}
