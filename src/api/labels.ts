// Labels wsgate reads on objects it does not own. The EndpointSlice controller sets this one to the name of the
// Service a slice belongs to (https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#ownership):
// the sources select slices by it and the builder groups them by it, so both read this one definition.
export const serviceNameLabel = 'kubernetes.io/service-name';
