/** The parts of ACS's JavaScript service client (plain JavaScript) that the tests call. */
declare module '@amrc-factoryplus/service-client' {
  interface ServiceWebSocket {
    send(data: string): void;
    close(): void;
    addEventListener(type: 'message', fn: (m: { data: string }) => void, opts?: { once?: boolean }): void;
  }
  interface ServiceInterface {
    websocket(url: string): Promise<ServiceWebSocket>;
  }
  export class ServiceClient {
    constructor(opts: Record<string, unknown>);
    ConfigDB: ServiceInterface;
    Auth: ServiceInterface;
  }
}
