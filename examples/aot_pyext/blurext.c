/* A Python C extension that ships the exported blur: no halo at run time.
 *
 *   import blurext
 *   blurext.blur(src, dst)   # src: 2-D uint16 buffer (H, W); dst: writable (H-2, W-2)
 *
 * Any object with the buffer protocol works (numpy arrays, memoryviews,
 * array.array reshaped via memoryview.cast); strided views are passed as
 * strided DLTensors without copies.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "blur.h"

static int fill(DLTensor *t, Py_buffer *b, int64_t *shape, int64_t *strides) {
    int i;
    if (b->ndim != 2 || b->itemsize != 2 || b->format == NULL || (strcmp(b->format, "H") != 0 &&
                                                                 strcmp(b->format, "=H") != 0 &&
                                                                 strcmp(b->format, "<H") != 0)) {
        PyErr_SetString(PyExc_TypeError, "blur needs 2-D uint16 buffers");
        return -1;
    }
    for (i = 0; i < 2; i++) {
        shape[i] = b->shape[i];
        if (b->strides[i] % 2) {
            PyErr_SetString(PyExc_ValueError, "stride is not a whole number of elements");
            return -1;
        }
        strides[i] = b->strides[i] / 2;
    }
    t->data = b->buf;
    t->device.device_type = kDLCPU;
    t->device.device_id = 0;
    t->ndim = 2;
    t->dtype.code = kDLUInt;
    t->dtype.bits = 16;
    t->dtype.lanes = 1;
    t->shape = shape;
    t->strides = strides;
    t->byte_offset = 0;
    return 0;
}

static PyObject *py_blur(PyObject *self, PyObject *args) {
    PyObject *src, *dst;
    Py_buffer bs, bd;
    int64_t s_shape[2], s_strides[2], d_shape[2], d_strides[2];
    DLTensor ts, td;
    int rc;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &src, &dst)) return NULL;
    if (PyObject_GetBuffer(src, &bs, PyBUF_STRIDES | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(dst, &bd, PyBUF_STRIDES | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&bs);
        return NULL;
    }
    if (fill(&ts, &bs, s_shape, s_strides) < 0 || fill(&td, &bd, d_shape, d_strides) < 0) {
        PyBuffer_Release(&bs);
        PyBuffer_Release(&bd);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = blur(&ts, &td);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bs);
    PyBuffer_Release(&bd);
    if (rc != 0) {
        PyErr_Format(PyExc_ValueError, "blur failed (%d): %s", rc, blur_error_message());
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_version(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyUnicode_FromString(blur_version());
}

static PyMethodDef methods[] = {
    {"blur", py_blur, METH_VARARGS, "blur(src, dst): 3x3 box blur of uint16 (H, W) into (H-2, W-2)"},
    {"version", py_version, METH_NOARGS, "the halo version and ABI of the embedded kernel"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "blurext", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_blurext(void) { return PyModule_Create(&module); }
