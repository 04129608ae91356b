// The ACS client libraries ship plain JavaScript without type declarations.
declare module '@amrc-factoryplus/service-client';
declare module '@amrc-factoryplus/sparkplug-app';
