// Entry of the browser bundle the OFREP browser test serves (tests/support/webbundle.py bundles it
// with esbuild at test time): the OpenFeature web SDK and the OFREP web provider, as the global
// `ofrepWeb` of the page.
export { OpenFeature, ProviderEvents } from "@openfeature/web-sdk";
export { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
